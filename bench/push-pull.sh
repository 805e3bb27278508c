#!/usr/bin/env bash
# Benchmark: kiln push and pull of an image with one 1 GiB layer to a
# local registry (Debian's docker-registry on 127.0.0.1), against
# `skopeo copy` of the same image.
#
# Reports hyperfine medians of:
#   push-cold      kiln push from a store that has only the uncompressed
#                  layer (gzip-compresses it into the store, then uploads)
#   push-warm      kiln push of the same image to a new repository (the
#                  gzip blob from an earlier push is reused: upload only)
#   push-plain     kiln push --compression uncompressed (upload only)
#   skopeo-push    skopeo copy docker-archive:IMG.tar docker://… (the
#                  `kiln save` archive of the same image; skopeo compresses;
#                  its blob-info cache is removed first, else it mounts)
#   pull           kiln pull into an empty state directory (verifies the
#                  digest, decompresses to verify the diffID, fsyncs)
#   skopeo-pull    skopeo copy docker://… oci:DIR (digest check only)
#   dd-fsync       a durable copy of 1 GiB (the floor for pull)
# and the peak RSS of one run of each kiln and skopeo operation.
# Every push goes to a fresh repository, so nothing is skipped by HEAD.
#
# Usage: bench/push-pull.sh [RUNS]     (needs hyperfine, GNU time, skopeo,
#                                       docker-registry, curl)
# Env:   KILN=path/to/kiln (default: $CARGO_TARGET_DIR or target/release/kiln,
#        built if missing); WORK=dir (default: a temp dir in /var/tmp);
#        SIZE_MB=1024; KILN_REGISTRY_CHUNK_SIZE etc. pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
SIZE_MB=${SIZE_MB:-1024}
target=${CARGO_TARGET_DIR:-target}
KILN=${KILN:-$target/release/kiln}
[ -x "$KILN" ] || cargo build --release --bin kiln
KILN=$(realpath "$KILN")
WORK=${WORK:-$(mktemp -d /var/tmp/kiln-bench.XXXXXX)}
for tool in hyperfine skopeo docker-registry curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is required" >&2; exit 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REG
  secret: kiln-bench
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
trap 'kill $REG_PID 2>/dev/null; wait $REG_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "http://$REG/v2/" >/dev/null && break; sleep 0.1; done

echo "== setup: ${SIZE_MB} MiB layer in $WORK, registry at $REG" >&2
mkdir -p "$WORK/rootfs"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom > "$WORK/rootfs/big.bin"
echo hello > "$WORK/rootfs/small.txt"
tar -C "$WORK/rootfs" -cf "$WORK/layer.tar" .
rm -rf "$WORK/rootfs"
"$KILN" --root "$WORK/src" import "$WORK/layer.tar" big:1 >/dev/null
"$KILN" --root "$WORK/src" save -o "$WORK/big.tar" big:1
rm -f "$WORK/layer.tar"
cp -a "$WORK/src" "$WORK/warm"
"$KILN" --root "$WORK/warm" push -q big:1 "$REG/ref:1" >/dev/null
bytes=$(stat -c %s "$WORK/big.tar")
uniq='$(date +%s%N)'
# skopeo remembers where it pushed a blob (its blob-info cache) and then
# mounts it instead of compressing and uploading again: remove the cache
# before each skopeo push so that it does the same work as kiln's cold push.
SKOPEO_CACHE=${SKOPEO_CACHE:-/var/lib/containers/cache/blob-info-cache-v1.boltdb}
[ "$(id -u)" = 0 ] || SKOPEO_CACHE=${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb

hyperfine -N --style basic --runs "$RUNS" --export-json "$WORK/h.json" \
  --prepare "sh -c 'rm -rf $WORK/run && cp -a $WORK/src $WORK/run'" \
  --prepare true --prepare true --prepare "rm -f $SKOPEO_CACHE" \
  --prepare "rm -rf $WORK/dst" --prepare "rm -rf $WORK/oci" --prepare "rm -f $WORK/copy" \
  -n push-cold "sh -c '$KILN --root $WORK/run push -q big:1 $REG/cold-$uniq:1'" \
  -n push-warm "sh -c '$KILN --root $WORK/warm push -q big:1 $REG/warm-$uniq:1'" \
  -n push-plain "sh -c '$KILN --root $WORK/src push -q --compression uncompressed big:1 $REG/plain-$uniq:1'" \
  -n skopeo-push "sh -c 'skopeo copy -q --dest-tls-verify=false docker-archive:$WORK/big.tar docker://$REG/sk-$uniq:1'" \
  -n pull "$KILN --root $WORK/dst pull -q $REG/ref:1" \
  -n skopeo-pull "skopeo copy -q --src-tls-verify=false docker://$REG/ref:1 oci:$WORK/oci:x" \
  -n dd-fsync "dd if=$WORK/big.tar of=$WORK/copy bs=1M conv=fsync status=none" \
  >&2

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}'; }
rm -rf "$WORK/run"; cp -a "$WORK/src" "$WORK/run"
rss_push=$(rss "$KILN" --root "$WORK/run" push -q big:1 "$REG/rss-cold:1")
rss_warm=$(rss "$KILN" --root "$WORK/warm" push -q big:1 "$REG/rss-warm:1")
rss_plain=$(rss "$KILN" --root "$WORK/src" push -q --compression uncompressed big:1 "$REG/rss-plain:1")
rm -f "$SKOPEO_CACHE"
rss_skpush=$(rss skopeo copy -q --dest-tls-verify=false "docker-archive:$WORK/big.tar" "docker://$REG/rss-sk:1")
rm -rf "$WORK/dst" "$WORK/oci"
rss_pull=$(rss "$KILN" --root "$WORK/dst" pull -q "$REG/ref:1")
rss_skpull=$(rss skopeo copy -q --src-tls-verify=false "docker://$REG/ref:1" "oci:$WORK/oci:x")

median() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "$2"; }
t_skpush=$(median "$WORK/h.json" 3)
t_skpull=$(median "$WORK/h.json" 5)
printf '\nimage: %d bytes (%.0f MiB, random data), %s runs each, medians; load average %s\n' \
  "$bytes" "$(echo "$bytes/1048576" | bc -l)" "$RUNS" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %10s %8s %14s %12s\n' operation median MB/s "x skopeo" "peak RSS MB"
i=0
for name in push-cold push-warm push-plain skopeo-push pull skopeo-pull dd-fsync; do
  t=$(median "$WORK/h.json" $i)
  case $name in
    push-cold) r=$rss_push; ref=$t_skpush;; push-warm) r=$rss_warm; ref=$t_skpush;;
    push-plain) r=$rss_plain; ref=$t_skpush;; skopeo-push) r=$rss_skpush; ref=$t_skpush;;
    pull) r=$rss_pull; ref=$t_skpull;; skopeo-pull) r=$rss_skpull; ref=$t_skpull;;
    *) r=-; ref=$t_skpull;;
  esac
  printf '%-12s %9.3fs %8.0f %14.2f %12s\n' "$name" "$t" "$(echo "$bytes/$t/1000000" | bc -l)" \
    "$(echo "$t/$ref" | bc -l)" "$r"
  i=$((i + 1))
done
