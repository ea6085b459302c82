#!/usr/bin/env bash
# Regenerates the committed contract artifacts from chain/contracts/*.sol:
#   chain/build/<Name>.abi, chain/build/<Name>.bin   (solc, optimizer on)
#   chain/bindings/<name>.go                          (go tool abigen --v2)
# Usage: chain/generate.sh [OUTDIR]   (OUTDIR defaults to chain/; check-generated.sh
# passes a temp dir). Needs node + npm; solc is installed from npm, pinned, into
# chain/.solc/ (git-ignored) on first use, or, when the registry is unreachable,
# copied from a prebuilt ../shared/tools/solc beside the checkout (or set
# IPSX_SOLC_CACHE to such a directory). abigen comes from go.mod's tool directive.
set -euo pipefail

SOLC_VERSION=0.8.30

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="${IPSX_SOLC_CACHE:-$here/.solc}"

solc_version() { node -p "try{require('$1/node_modules/solc/package.json').version}catch(e){''}" 2>/dev/null; }

if [[ "$(solc_version "$cache")" != "$SOLC_VERSION" ]]; then
	mkdir -p "$cache"
	echo '{"private":true,"name":"ipsx-solc"}' >"$cache/package.json"
	if ! npm install --prefix "$cache" --no-audit --no-fund --silent --save-exact "solc@$SOLC_VERSION" >&2; then
		# No registry: a prebuilt copy in a shared tools directory beside the
		# checkout (../shared/tools/solc, or two levels up for a worktree),
		# read-only there, so copied into the cache.
		found=
		for dir in "$here/../../shared/tools/solc" "$here/../../../shared/tools/solc"; do
			if [[ "$(solc_version "$dir")" == "$SOLC_VERSION" ]]; then
				found="$dir"
				break
			fi
		done
		if [[ -z "$found" ]]; then
			echo "chain: npm cannot install solc@$SOLC_VERSION and no prebuilt copy was found; set IPSX_SOLC_CACHE to a directory holding node_modules/solc" >&2
			exit 1
		fi
		echo "chain: npm unreachable; using solc $SOLC_VERSION from $found" >&2
		rm -rf "$cache/node_modules"
		cp -R "$found/node_modules" "$cache/node_modules"
		chmod -R u+w "$cache/node_modules"
	fi
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
