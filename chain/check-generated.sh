#!/usr/bin/env bash
# Fails if the committed chain/build and chain/bindings differ from what
# generate.sh produces from chain/contracts now.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/generate.sh" "$tmp"
status=0
for d in build bindings; do
	if ! diff -ru "$here/$d" "$tmp/$d"; then
		status=1
	fi
done
if [[ $status -ne 0 ]]; then
	echo "chain: generated files are stale; run chain/generate.sh" >&2
	exit 1
fi
echo "chain: generated files are up to date"
