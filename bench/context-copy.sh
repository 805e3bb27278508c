#!/usr/bin/env bash
# Cold copy of a 20,000-file, 400 MB build context, and a rebuild after one
# file changed: kiln's hasher+copier (solver::contenthash + solver::fileop)
# against this machine's floor, `tar -C CTX -cf - . | tar -C DEST -xf -`.
#
#   bench/context-copy.sh [WORKDIR] [FILES] [MB]
#
# Everything lives under WORKDIR (default: target/bench-context, same
# filesystem as a state directory). Prints medians of several runs (hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-context}
files=${2:-20000}
mb=${3:-400}
mkdir -p "$work"
work=$(realpath "$work")
ctx=$work/ctx

if [ ! -f "$ctx/.generated-$files-$mb" ]; then
  rm -rf "$ctx"; mkdir -p "$ctx"
  echo "generating $files files, $mb MB in $ctx" >&2
  python3 - "$ctx" "$files" "$mb" <<'PY'
import os, sys
ctx, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mb * 1024 * 1024 // n
rnd = os.urandom(1 << 20)
for i in range(n):
    d = os.path.join(ctx, f"d{i % 200:03}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    off = (i * 7919) % ((1 << 20) - size) if size < (1 << 20) else 0
    with open(os.path.join(d, f"f{i:05}.bin"), "wb") as f:
        f.write(rnd[off:off + size])
PY
  touch "$ctx/.generated-$files-$mb"
fi

cargo build --release -p solver --example context_copy >&2
bin=${CARGO_TARGET_DIR:-target}/release/examples/context_copy

echo "== cold copy (hash + copy), vs the tar|tar floor" >&2
hyperfine --warmup 1 --runs 5 \
  --prepare "rm -rf $work/dest $work/destk; mkdir -p $work/dest $work/destk; sync" \
  -n 'floor: tar | tar' "tar -C $ctx -cf - . | tar -C $work/dest -xf -" \
  -n 'kiln: hash + copy' "$bin $ctx $work/destk" \
  --export-markdown "$work/cold.md"

echo "== after one file changed: delta copy (stat cache warm) vs a full copy" >&2
rm -rf "$work/base" "$work/first"; mkdir -p "$work/base" "$work/first"
"$bin" "$ctx" "$work/first" "$work/stat.cache"
cp "$work/manifest.json" "$work/prev.json"
echo changed >> "$ctx/d000/s0/f00000.bin"
hyperfine --warmup 1 --runs 5 \
  --prepare "rm -rf $work/upper $work/destk; mkdir -p $work/upper $work/destk" \
  -n 'kiln: delta copy' "$bin $ctx $work/base $work/stat.cache --delta $work/prev.json $work/base $work/upper" \
  -n 'kiln: full copy' "$bin $ctx $work/destk $work/stat.cache" \
  --export-markdown "$work/delta.md"
cat "$work/cold.md" "$work/delta.md"
