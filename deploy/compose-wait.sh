#!/bin/sh
# make compose-up's last step: wait until the requester's SOCKS5 proxy
# carries a request to the target through a provider (auto-buy makes the
# deal), then print the commands to use. COMPOSE and PROJECT come from the
# Makefile; WAIT bounds the wait (seconds).
set -eu
c="${COMPOSE:-docker-compose} -f deploy/compose.yaml -p ${PROJECT:-ipsx}"
socks="127.0.0.1:${IPSX_SOCKS_PORT:-11080}"
http="127.0.0.1:${IPSX_HTTP_PORT:-18080}"
api="127.0.0.1:${IPSX_API_PORT:-17480}"
start=$(date +%s)
deadline=$((start + ${WAIT:-180}))

fail() {
	echo "compose-up: $1" >&2
	$c ps >&2 || true
	$c logs --tail 40 requester >&2 || true
	exit 1
}

echo "compose-up: waiting for the requester's key and proxy password"
until pw=$($c exec -T requester /ipsx proxy password 2>/dev/null) && [ -n "$pw" ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "the requester made no proxy password in time"
	sleep 1
done

echo "compose-up: waiting for a DE offer and the first request through the proxy (auto-buy makes the deal)"
until ip=$(curl -fsS --max-time 70 --socks5-hostname "$socks" --proxy-user "country-DE:$pw" http://target/ 2>/dev/null); do
	[ "$(date +%s)" -lt "$deadline" ] || fail "no request went through the proxy in time"
	sleep 1
done
# The image has no shell and no cat: docker cp reads the token file.
token=$(docker cp "$($c ps -q requester)":/data/api.token - 2>/dev/null | tar -xO 2>/dev/null || true)
[ -n "$token" ] || token="(in the requester's /data/api.token)"
echo "compose-up: the first proxied request went out from provider $ip, $(($(date +%s) - start)) s after the containers started"
cat <<MSG

The testnet runs (project ${PROJECT:-ipsx}). Through the requester's SOCKS5 proxy:

  curl --socks5-hostname $socks --proxy-user country-DE:$pw http://target/
  curl --socks5-hostname $socks --proxy-user country-US:$pw http://target/

or its HTTP proxy:

  curl --proxy http://$http --proxy-user country-DE-session-s1:$pw http://target/

Each answers with the IP of the provider container it left from. The
requester's API and dashboard: http://$api/ui/ with the token $token
(or run ipsx in the container: $c exec requester /ipsx deals list).
More providers: ${COMPOSE:-docker-compose} -f deploy/compose.yaml -p ${PROJECT:-ipsx} up -d --scale provider=4
Stop and remove everything: make compose-down
MSG
