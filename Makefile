# IPSX — run `make help` for the targets.

GO       ?= go
PKGS     := ./...
LINTPKGS := $(shell $(GO) list ./... | grep -v /chain/bindings)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION) -X github.com/ipsx/ipsx/node.Version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: demo
demo: tools ## the local demo: dev chain, providers, a requester, a page fetched through the SOCKS5 proxy
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/ipsx demo

.PHONY: tools
tools: ## install what the demo and the tests run besides Go (curl, python3, chromium; as root also ip and nft for the netns tests), from Debian's packages if missing
	@pkgs=; command -v curl >/dev/null || pkgs=curl; \
	command -v python3 >/dev/null || pkgs="$$pkgs python3"; \
	if ! command -v chromium >/dev/null; then \
		echo "tools: installing Debian's chromium (a few hundred MB) for the headless-browser proxy test (node TestFrontDoor/chromium)"; \
		pkgs="$$pkgs chromium"; \
	fi; \
	if [ "$$(id -u)" -eq 0 ]; then \
		command -v ip >/dev/null || pkgs="$$pkgs iproute2"; \
		command -v nft >/dev/null || pkgs="$$pkgs nftables"; \
	fi; \
	[ -z "$$pkgs" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs; }

.PHONY: build
build: ## build bin/ipsx
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ipsx ./cmd/ipsx

IMAGE   ?= ipsx:dev
CHAIN_IMAGE ?= ipsx-devchain:dev
# A static binary: cgo stays on (libsecp256k1), linked with -extldflags -static.
STATIC  := -trimpath -ldflags "$(LDFLAGS) -s -w -linkmode external -extldflags -static"
# docker-compose (v1) where it is installed, else the v2 plugin.
COMPOSE ?= $(shell command -v docker-compose >/dev/null 2>&1 && echo docker-compose || echo docker compose)
COMPOSE_PROJECT ?= ipsx

.PHONY: image
image: ## the node image ipsx:dev (IMAGE=...) and the dev chain image ipsx-devchain:dev (CHAIN_IMAGE=...): static ipsx binaries FROM scratch (deploy/Dockerfile); prints their sizes
	@echo "image: building two static ipsx (cgo for libsecp256k1, -tags netgo,osusergo, -extldflags -static): the node's without the dev chain (-tags nodevchain), and the full one for the dev chain; the first build compiles every package again and takes a few minutes"
	@mkdir -p deploy/build/data deploy/build/rootfs/etc deploy/build/rootfs/tmp && chmod 1777 deploy/build/rootfs/tmp
	CGO_ENABLED=1 $(GO) build -tags netgo,osusergo,nodevchain $(STATIC) -o deploy/build/ipsx ./cmd/ipsx
	CGO_ENABLED=1 $(GO) build -tags netgo,osusergo $(STATIC) -o deploy/build/ipsx-full ./cmd/ipsx
	cp deploy/passwd deploy/group deploy/build/rootfs/etc/
	docker build -q -t $(IMAGE) -f deploy/Dockerfile deploy/build >/dev/null
	docker build -q --build-arg BIN=ipsx-full -t $(CHAIN_IMAGE) -f deploy/Dockerfile deploy/build >/dev/null
	@docker run --rm --network none $(IMAGE) --version | sed 's/^/image: the binary runs in the empty image: /'
	@docker image inspect -f '{{.Size}}' $(IMAGE) | awk '{printf "image: $(IMAGE) is %.1f MB (goal: at most 60 MB)\n", $$1/1e6}'
	@docker image inspect -f '{{.Size}}' $(CHAIN_IMAGE) | awk '{printf "image: $(CHAIN_IMAGE) (the dev chain and the testnet commands too) is %.1f MB\n", $$1/1e6}'

.PHONY: compose-up
compose-up: image ## the docker-compose testnet (deploy/compose.yaml): dev chain, bootstrap, 3 providers, a requester, a target; waits for the first proxied request
	$(COMPOSE) -f deploy/compose.yaml -p $(COMPOSE_PROJECT) up -d
	@COMPOSE="$(COMPOSE)" PROJECT=$(COMPOSE_PROJECT) sh deploy/compose-wait.sh

.PHONY: compose-down
compose-down: ## stop the docker-compose testnet and remove its containers, networks and volumes
	$(COMPOSE) -f deploy/compose.yaml -p $(COMPOSE_PROJECT) down -v --remove-orphans

.PHONY: test
test: tools ## vet, then every test with the race detector, in random order, then the gossip flood's p99 ratio without it
	$(GO) vet $(PKGS)
	$(GO) test -race -shuffle=on -timeout 25m $(PKGS)
	@echo "== the gossip flood once more without -race, which asserts its p99 ratio (the detector's cost swamps it)"
	$(GO) test -count 1 -run '^TestGossipFlood$$' -timeout 10m ./node/

.PHONY: bench
bench: ## benchmarks: signature verification, heartbeats, listing a shard, propagation (30 and 100 nodes), deal set-up, matching, gas, tunnel (CPU per GiB, at 20/50/100 ms RTT, 200 flows), VPN vs wireguard-go (as root)
	$(GO) test -run '^$$' -bench 'VerifyVsEcrecover' -benchtime 20000x ./orderbook/
	$(GO) test -run '^$$' -bench 'ApplyHeartbeat' -benchtime 50x ./orderbook/
	$(GO) test -run '^$$' -bench 'ListShard' -benchtime 10x ./orderbook/
	$(GO) test -run '^$$' -bench 'Propagation30|DealSetup' -benchtime 1x ./testnet/
	$(GO) test -run '^$$' -bench 'Match100k' -benchtime 3x ./matching/
	$(GO) test -run '^$$' -bench 'Gas' -benchtime 1x ./chain/
	$(GO) test -run '^$$' -bench 'TunnelThroughput' ./tunnel/
	$(GO) test -run '^$$' -bench 'TunnelVsSSH' -benchtime 1x -timeout 20m ./testnet/
	$(GO) test -run '^$$' -bench '^BenchmarkTunnelRTT$$' -benchtime 1x -timeout 10m ./testnet/
	$(GO) test -run '^$$' -bench '^BenchmarkTunnel200Flows$$' -benchtime 1x -timeout 10m ./testnet/
	$(GO) test -run '^$$' -bench '^BenchmarkPropagation100$$' -benchtime 1x -timeout 15m ./testnet/
	$(GO) test -run '^$$' -bench '^BenchmarkVPN$$' -benchtime 1x -timeout 10m ./cmd/ipsx/
	$(GO) test -run '^$$' -bench '^BenchmarkGossipFlood$$' -benchtime 1x -timeout 10m ./node/

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$pkg || exit 1; \
		done; \
	done

.PHONY: lint
lint: ## gofmt, go vet, the node image's build (-tags nodevchain) compiles, staticcheck (pinned in go.mod)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	$(GO) build -tags nodevchain -o /dev/null ./cmd/ipsx/
	$(GO) tool staticcheck $(LINTPKGS)

.PHONY: generate
generate: ## regenerate contract ABI, bytecode and Go bindings (installs solc-js from npm)
	bash chain/generate.sh

.PHONY: check-generated
check-generated: ## fail if the committed contract outputs differ from a fresh build
	bash chain/check-generated.sh
