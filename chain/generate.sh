#!/usr/bin/env bash
# Regenerates the committed contract artifacts from chain/contracts/*.sol:
#   chain/build/<Name>.abi, chain/build/<Name>.bin   (solc, optimizer on)
#   chain/bindings/<name>.go                          (go tool abigen --v2)
# Usage: chain/generate.sh [OUTDIR]   (OUTDIR defaults to chain/; check-generated.sh
# passes a temp dir). Needs node; solc, pinned, goes into chain/.solc/
# (git-ignored) on first use: copied from a prebuilt ../shared/tools/solc beside
# the checkout (or ../../shared/tools/solc, for a worktree) when there is one,
# else installed from npm. IPSX_SOLC_CACHE names another cache directory (one
# already holding node_modules/solc is used as it is). abigen comes from go.mod's
# tool directive.
set -euo pipefail

SOLC_VERSION=0.8.30

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="${IPSX_SOLC_CACHE:-$here/.solc}"

solc_version() { node -p "try{require('$1/node_modules/solc/package.json').version}catch(e){''}" 2>/dev/null; }

# A prebuilt copy in a shared tools directory beside the checkout:
# ../shared/tools/solc from the repository root, or one level further up for
# a worktree under a directory of worktrees.
root="$(cd "$here/.." && pwd)"
prebuilt_dirs=("$root/../shared/tools/solc" "$root/../../shared/tools/solc")

if [[ "$(solc_version "$cache")" != "$SOLC_VERSION" ]]; then
	found=
	for dir in "${prebuilt_dirs[@]}"; do
		if [[ "$(solc_version "$dir")" == "$SOLC_VERSION" ]]; then
			found="$(cd "$dir" && pwd)"
			break
		fi
	done
	mkdir -p "$cache"
	if [[ -n "$found" ]]; then
		# The same pinned version, without a trip to the registry; read-only
		# there, so copied into the cache.
		echo "chain: using the prebuilt solc $SOLC_VERSION from $found" >&2
		rm -rf "$cache/node_modules"
		cp -R "$found/node_modules" "$cache/node_modules"
		chmod -R u+w "$cache/node_modules"
	else
		echo '{"private":true,"name":"ipsx-solc"}' >"$cache/package.json"
		if ! npm install --prefix "$cache" --no-audit --no-fund --silent --fetch-retries 1 --save-exact "solc@$SOLC_VERSION" >&2; then
			{
				echo "chain: cannot get solc $SOLC_VERSION: npm could not install it, and there is no prebuilt copy in"
				for dir in "${prebuilt_dirs[@]}"; do
					echo "chain:   $dir"
				done
				echo "chain: put solc-js $SOLC_VERSION there (a directory holding node_modules/solc), or set IPSX_SOLC_CACHE to such a directory"
			} >&2
			exit 1
		fi
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
