# The same image as deploy/Dockerfile, built with a golang stage, for a
# machine that can pull from a registry (the project's own CI cannot, so
# this file is not tested there; `make image` is). From the repository's
# root:
#
#   docker build -f deploy/Dockerfile.builder -t ipsx:dev .
#   docker build -f deploy/Dockerfile.builder --build-arg TAGS=netgo,osusergo -t ipsx-devchain:dev .
#
# TAGS: the node image leaves the dev chain out (nodevchain); the dev chain
# image (deploy/compose.yaml's devchain service) keeps it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TAGS=netgo,osusergo,nodevchain
RUN CGO_ENABLED=1 go build -tags ${TAGS} -trimpath \
      -ldflags "-X main.version=${VERSION} -X github.com/ipsx/ipsx/node.Version=${VERSION} -s -w -linkmode external -extldflags -static" \
      -o /out/ipsx ./cmd/ipsx \
 && /out/ipsx --version \
 && mkdir -p /out/data /out/rootfs/etc /out/rootfs/tmp && chmod 1777 /out/rootfs/tmp \
 && cp deploy/passwd deploy/group /out/rootfs/etc/

FROM scratch
COPY --from=build /out/rootfs/ /
COPY --from=build --chown=65532:65532 /out/data/ /data/
COPY --from=build /out/ipsx /ipsx
USER 65532:65532
ENV IPSX_DATADIR=/data
VOLUME ["/data"]
EXPOSE 4001/tcp 4001/udp 7480/tcp 1080/tcp 8080/tcp
HEALTHCHECK --interval=5s --timeout=6s --start-period=120s --retries=3 CMD ["/ipsx", "health"]
ENTRYPOINT ["/ipsx"]
CMD ["node"]
