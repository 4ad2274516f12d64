#!/usr/bin/env bash
# Builds the WebAssembly modules the service loads from their AssemblyScript sources (a dev
# dependency); the built files are committed, and a unit test checks they are what these sources build.
#   bash scripts/build-wasm.sh [OUT_DIR]   (default: next to each source)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-}"
src="$here/src/decode/wasm/json.as.ts"
dest="${out:-$here/src/decode/wasm}/json.wasm"
"$here/node_modules/.bin/node" "$here/node_modules/assemblyscript/bin/asc.js" "$src" \
  -O3 --runtime stub --noAssert --enable simd -o "$dest"
