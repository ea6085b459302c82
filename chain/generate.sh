#!/usr/bin/env bash
# Regenerates the committed contract artifacts from chain/contracts/*.sol:
#   chain/build/<Name>.abi, chain/build/<Name>.bin   (solc, optimizer on)
#   chain/bindings/<name>.go                          (go tool abigen --v2)
# Usage: chain/generate.sh [OUTDIR]   (OUTDIR defaults to chain/; check-generated.sh
# passes a temp dir). Needs node + npm; solc is installed from npm, pinned, into
# chain/.solc/ (git-ignored) on first use. abigen comes from go.mod's tool directive.
set -euo pipefail

SOLC_VERSION=0.8.30

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="${IPSX_SOLC_CACHE:-$here/.solc}"

if [[ "$(node -p "try{require('$cache/node_modules/solc/package.json').version}catch(e){''}" 2>/dev/null)" != "$SOLC_VERSION" ]]; then
	mkdir -p "$cache"
	echo '{"private":true,"name":"ipsx-solc"}' >"$cache/package.json"
	npm install --prefix "$cache" --no-audit --no-fund --silent --save-exact "solc@$SOLC_VERSION" >&2
fi

rm -rf "$out/build" "$out/bindings"
mkdir -p "$out/build" "$out/bindings"
NODE_PATH="$cache/node_modules" node "$here/compile.js" "$here/contracts" "$out/build" >&2

cd "$here/.." # the module root, so go tool finds go.mod's abigen
for abi in "$out"/build/*.abi; do
	name="$(basename "$abi" .abi)"
	lower="$(echo "$name" | tr '[:upper:]' '[:lower:]')"
	go tool abigen --v2 --pkg bindings --type "$name" \
		--abi "$abi" --bin "$out/build/$name.bin" --out "$out/bindings/$lower.go"
done
