#!/usr/bin/env bash
# Benchmark: kiln save and load of an image with one 1 GiB layer.
#
# Reports medians of several runs (hyperfine), the throughput of each
# against `cat FILE > /dev/null` on the same file (the page-cache read
# floor) and against `dd ... conv=fsync` copying it beside the store (the
# durable-write floor: load must write and fsync every byte), and the peak
# RSS of one run of each (/usr/bin/time -v; target < 100 MB).
#
# Usage: bench/save-load.sh [RUNS]      (needs hyperfine and GNU time)
# Env:   KILN=path/to/kiln (default: target/release/kiln, built if missing)
#        WORK=dir on the filesystem to measure (default: a temp dir in /var/tmp)
#        SIZE_MB=1024
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
SIZE_MB=${SIZE_MB:-1024}
target=${CARGO_TARGET_DIR:-target}
KILN=${KILN:-$target/release/kiln}
[ -x "$KILN" ] || cargo build --release --bin kiln
KILN=$(realpath "$KILN")
WORK=${WORK:-$(mktemp -d /var/tmp/kiln-bench.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT
command -v hyperfine >/dev/null || { echo "hyperfine is required" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is required" >&2; exit 1; }

echo "== setup: ${SIZE_MB} MiB layer in $WORK" >&2
mkdir -p "$WORK/rootfs"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom > "$WORK/rootfs/big.bin"
echo hello > "$WORK/rootfs/small.txt"
tar -C "$WORK/rootfs" -cf "$WORK/layer.tar" .
rm -rf "$WORK/rootfs"
"$KILN" --root "$WORK/src" import "$WORK/layer.tar" big:1 >/dev/null
"$KILN" --root "$WORK/src" save -o "$WORK/big.tar" big:1
rm -f "$WORK/layer.tar"
bytes=$(stat -c %s "$WORK/big.tar")

median() { # hyperfine json -> median seconds of command $2
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "$2"
}

hyperfine -N --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/h.json" \
  --prepare true --prepare "rm -f $WORK/copy" --prepare "rm -rf $WORK/dst" --prepare "rm -f $WORK/out.tar" --prepare true \
  -n cat "cat $WORK/big.tar" \
  -n dd-fsync "dd if=$WORK/big.tar of=$WORK/copy bs=1M conv=fsync status=none" \
  -n load "$KILN --root $WORK/dst load -q -i $WORK/big.tar" \
  -n save-file "$KILN --root $WORK/src save -o $WORK/out.tar big:1" \
  -n save-stdout "sh -c '$KILN --root $WORK/src save big:1 > /dev/null'" \
  >&2
cmp "$WORK/big.tar" "$WORK/out.tar" && echo "save output is byte-identical to its input archive" >&2

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}'; }
rm -rf "$WORK/dst"
rss_load=$(rss "$KILN" --root "$WORK/dst" load -q -i "$WORK/big.tar")
rm -f "$WORK/out.tar"
rss_save=$(rss "$KILN" --root "$WORK/src" save -o "$WORK/out.tar" big:1)
rss_cat=$(rss cat "$WORK/big.tar")

t_cat=$(median "$WORK/h.json" 0)
t_dd=$(median "$WORK/h.json" 1)
printf '\narchive: %d bytes (%.0f MiB), %s runs each, medians\n' "$bytes" "$(echo "$bytes/1048576" | bc -l)" "$RUNS"
printf '%-12s %10s %10s %12s %12s %12s\n' operation median MB/s "x cat" "x dd-fsync" "peak RSS MB"
i=0
for name in cat dd-fsync load save-file save-stdout; do
  t=$(median "$WORK/h.json" $i)
  case $name in cat) r=$rss_cat;; load) r=$rss_load;; save-file) r=$rss_save;; *) r=-;; esac
  printf '%-12s %9.3fs %10.0f %12.2f %12.2f %12s\n' "$name" "$t" "$(echo "$bytes/$t/1000000" | bc -l)" \
    "$(echo "$t/$t_cat" | bc -l)" "$(echo "$t/$t_dd" | bc -l)" "$r"
  i=$((i + 1))
done
