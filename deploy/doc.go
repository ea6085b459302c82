// Package deploy holds the container image (Dockerfile, built by make
// image), the docker-compose testnet (compose.yaml, make compose-up), the
// systemd unit for ipsx node, and the fault tests that run the compose
// testnet in Docker: a provider killed mid-deal, a partition, a restarted
// requester, every node restarted in turn, and a node with a bad config
// (compose_test.go). The tests are skipped where no Docker engine is
// reachable; the package has no code of its own.
package deploy
