#!/usr/bin/env bash
# kiln build vs BuildKit (Debian docker.io's dockerd, DOCKER_BUILDKIT=1) vs
# buildah bud, side by side in one run, on the scenarios of issue 5:
#
#   cached   fully cached rebuild of a small COPY + RUN Dockerfile
#   cold     cold multi-stage build (three stages, RUN and COPY --from)
#   ctx-cold 20,000-file, 400 MB context copied cold (fresh cache each run),
#            beside this machine's floor: tar -C CTX -cf - . | tar -C DIR -xf -
#            (and that floor made durable: the time of a sync -f after it)
#   ctx-one  the same context after one file changed
#   stages   four independent stages that each sleep 1 s
#
#   bench/build-compare.sh [RUNS] [SCENARIO...]
#
# Prints hyperfine medians and the ratio of each peer to kiln, and kiln's peak
# RSS. Everything lives under target/bench-build (same filesystem as kiln's
# state directory there). dockerd is started with its own data root if it is
# not running, with --iptables=false --bridge=none, and builds use
# --network=host (no bridge exists); it is stopped again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(cached cold ctx-cold ctx-one stages)

work=$PWD/target/bench-build
mkdir -p "$work"
cargo build --release >&2
kiln=$PWD/${CARGO_TARGET_DIR:-target}/release/kiln
[ -x "$kiln" ] || kiln=$CARGO_TARGET_DIR/release/kiln
export KILN_ROOT=$work/kiln-root
docker=/usr/bin/docker
have_docker=0; have_buildah=0
command -v dockerd >/dev/null && [ -x $docker ] && have_docker=1
command -v buildah >/dev/null && have_buildah=1
# crun refuses this machine's hybrid cgroup layout; runc copes.
[ -x /usr/sbin/runc ] && export BUILDAH_RUNTIME=${BUILDAH_RUNTIME:-/usr/sbin/runc}

# --- base image, in all three stores -------------------------------------
if ! "$kiln" inspect busybox:latest >/dev/null 2>&1; then
  testdata/make-busybox-rootfs.sh "$work/busybox-rootfs.tar"
  "$kiln" import --change 'CMD ["sh"]' "$work/busybox-rootfs.tar" busybox:latest >/dev/null
fi
"$kiln" save -o "$work/busybox.tar" busybox:latest
started_dockerd=0
if [ $have_docker = 1 ]; then
  if ! $docker info >/dev/null 2>&1; then
    dockerd --iptables=false --bridge=none --data-root "$work/docker" \
      --exec-root /run/kiln-bench-docker --pidfile /run/kiln-bench-docker.pid \
      >"$work/dockerd.log" 2>&1 &
    started_dockerd=1
    for _ in $(seq 60); do $docker info >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  $docker load -i "$work/busybox.tar" >/dev/null
fi
[ $have_buildah = 1 ] && buildah pull -q "docker-archive:$work/busybox.tar" >/dev/null
cleanup() {
  if [ $started_dockerd = 1 ]; then
    kill "$(cat /run/kiln-bench-docker.pid)" 2>/dev/null || true
  fi
}
trap cleanup EXIT

bk() { DOCKER_BUILDKIT=1 $docker build --network=host -q "$@" >/dev/null; }
ba() { buildah bud --layers --network=host -q "$@" >/dev/null; }

results=$work/results.md
: >"$results"

# run NAME PREPARE CMD... : one hyperfine block, results appended
compare() {
  local name=$1 prepare=$2; shift 2
  local args=(--runs "$runs" --warmup 1 --export-json "$work/$name.json")
  [ -n "$prepare" ] && args+=(--prepare "$prepare")
  hyperfine "${args[@]}" "$@" >&2
  python3 - "$work/$name.json" "$name" >>"$results" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))["results"]
base = next(r for r in data if r["command"].startswith("kiln"))["median"]
print(f"\n### {sys.argv[2]}\n\n| tool | median | ratio to kiln |\n|---|---|---|")
for r in data:
    print(f"| {r['command']} | {r['median']:.3f} s | {r['median'] / base:.1f}x |")
PY
}

seconds() { # wall time in seconds of one command, its output discarded
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}

peak_rss() { # peak RSS in MB of one kiln command
  /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f MB", $1/1024}'
}

# --- scenario contexts -----------------------------------------------------
mk_cached() {
  local d=$work/cached; mkdir -p "$d"
  printf 'app %s\n' "$(seq 1 200)" >"$d/app.txt"
  cat >"$d/Dockerfile" <<'EOF'
FROM busybox
COPY app.txt /app/
RUN wc -l /app/app.txt > /app/lines
CMD ["cat", "/app/lines"]
EOF
}
mk_cold() {
  local d=$work/cold; mkdir -p "$d"
  echo 'int main() { return 0; }' >"$d/main.c"
  cat >"$d/Dockerfile" <<'EOF'
FROM busybox AS deps
RUN mkdir -p /deps && for i in $(seq 1 300); do echo "dep $i" > /deps/$i; done
FROM busybox AS build
COPY --from=deps /deps /deps
COPY main.c /src/
RUN cd /src && cat /deps/* main.c | sha256sum > /src/out
FROM busybox
COPY --from=build /src/out /out
RUN cat /out
EOF
}
mk_ctx() {
  local d=$work/ctx
  if [ ! -f "$d/.generated" ]; then
    rm -rf "$d"; mkdir -p "$d/src"
    python3 - "$d/src" <<'PY'
import os, sys
root, n, mb = sys.argv[1], 20000, 400
size = mb * 1024 * 1024 // n
rnd = os.urandom(1 << 20)
for i in range(n):
    d = os.path.join(root, f"d{i % 200:03}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    off = (i * 7919) % ((1 << 20) - size)
    with open(os.path.join(d, f"f{i:05}.bin"), "wb") as f:
        f.write(rnd[off:off + size])
PY
    printf 'FROM busybox\nCOPY src /ctx\n' >"$d/Dockerfile"
    touch "$d/.generated"
  fi
}
mk_stages() {
  local d=$work/stages; mkdir -p "$d"
  cat >"$d/Dockerfile" <<'EOF'
FROM busybox AS a
RUN sleep 1 && echo a > /a
FROM busybox AS b
RUN sleep 1 && echo b > /b
FROM busybox AS c
RUN sleep 1 && echo c > /c
FROM busybox AS d
RUN sleep 1 && echo d > /d
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
COPY --from=c /c /c
COPY --from=d /d /d
EOF
}

for s in "${scenarios[@]}"; do
  case $s in
  cached)
    mk_cached; d=$work/cached
    "$kiln" build -q -t bench-cached "$d" >/dev/null
    cmds=(-n "kiln build (cached)" "$kiln build -q -t bench-cached $d")
    [ $have_docker = 1 ] && { bk -t bench-cached "$d"; cmds+=(-n "BuildKit (cached)" "DOCKER_BUILDKIT=1 $docker build --network=host -q -t bench-cached $d"); }
    [ $have_buildah = 1 ] && { ba -t bench-cached "$d"; cmds+=(-n "buildah bud (cached)" "buildah bud --layers --network=host -q -t bench-cached $d"); }
    compare cached "" "${cmds[@]}"
    echo "kiln peak RSS (cached rebuild): $(peak_rss "$kiln" build -q "$d")" >>"$results"
    ;;
  cold)
    mk_cold; d=$work/cold
    cmds=(-n "kiln build (cold)" "$kiln build -q --no-cache -t bench-cold $d")
    [ $have_docker = 1 ] && cmds+=(-n "BuildKit (cold)" "DOCKER_BUILDKIT=1 $docker build --network=host -q --no-cache -t bench-cold $d")
    [ $have_buildah = 1 ] && cmds+=(-n "buildah bud (cold)" "buildah bud --layers --no-cache --network=host -q -t bench-cold $d")
    compare cold "" "${cmds[@]}"
    ;;
  ctx-cold)
    mk_ctx; d=$work/ctx
    # Every run of kiln and of the floor writes into a fresh directory and
    # nothing is deleted until the scenario ends: on this ext4 (mounted with
    # `discard`), creating files right after a mass deletion is up to 4x
    # slower for a while, whoever deletes, which would measure the previous
    # run's cleanup rather than the tool. `next` points at the directory the
    # next run uses (prepared, untimed: a state dir holding only the base
    # image, or an empty floor directory). kiln and the floor alternate run
    # by run (after one warm-up pair), so that both meet the same disk
    # state: how fast this disk creates files drifts by 5x over minutes.
    cold=$work/ctx-cold-runs; rm -rf "$cold"; mkdir -p "$cold"
    prep_kiln="n=\$(mktemp -d $cold/kiln.XXXX); $kiln --root \$n load -q -i $work/busybox.tar >/dev/null; ln -sfn \$n $cold/next; sync"
    prep_floor="n=\$(mktemp -d $cold/floor.XXXX); ln -sfn \$n $cold/next; sync"
    pairs=$work/ctx-cold-pairs.tsv; : >"$pairs"
    for i in $(seq 0 "$runs"); do
      eval "$prep_kiln"
      tk=$(seconds "$kiln" --root "$cold/next" build -q -t bench-ctx "$d")
      eval "$prep_floor"
      tf=$(seconds bash -c "tar -C $d -cf - . | tar -C $cold/next -xf -")
      # What making the floor's files durable costs: kiln syncs each layer
      # before it records it (the store's rule), tar leaves that to the
      # kernel's writeback.
      tsync=$(seconds sync -f "$cold/next")
      echo "ctx-cold pair $i: kiln $tk s, floor $tf s (+ sync $tsync s)" >&2
      [ "$i" -gt 0 ] && printf '%s\t%s\t%s\n' "$tk" "$tf" "$tsync" >>"$pairs"
    done
    files=()
    # BuildKit's cache can only be emptied by deleting it: let the disk
    # settle afterwards so that it pays as little for that as it can.
    if [ $have_docker = 1 ]; then
      hyperfine --runs "$runs" --warmup 1 --export-json "$work/ctx-cold-bk.json" \
        --prepare "$docker builder prune -af >/dev/null; sync; sleep 20" \
        -n "BuildKit (context cold)" "DOCKER_BUILDKIT=1 $docker build --network=host -q -t bench-ctx $d" >&2
      files+=("$work/ctx-cold-bk.json")
    fi
    if [ $have_buildah = 1 ]; then
      hyperfine --runs "$runs" --warmup 1 --export-json "$work/ctx-cold-buildah.json" --prepare sync \
        -n "buildah bud (context cold)" "buildah bud --layers --no-cache --network=host -q -t bench-ctx $d" >&2
      files+=("$work/ctx-cold-buildah.json")
    fi
    python3 - ctx-cold "$pairs" "${files[@]}" >>"$results" <<'PY2'
import json, statistics, sys
pairs = [tuple(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
kiln = statistics.median(p[0] for p in pairs)
floor = statistics.median(p[1] for p in pairs)
ratio = statistics.median(p[0] / p[1] for p in pairs)
durable = statistics.median(p[1] + p[2] for p in pairs)
ratio_durable = statistics.median(p[0] / (p[1] + p[2]) for p in pairs)
print(f"\n### {sys.argv[1]}\n\n| tool | median | ratio to kiln |\n|---|---|---|")
print(f"| kiln build (context cold) | {kiln:.3f} s | 1.00x |")
print(f"| floor: tar \\| tar (alternating with kiln) | {floor:.3f} s | {floor / kiln:.2f}x |")
print(f"| floor, then sync -f (durable, as kiln's layer) | {durable:.3f} s | {durable / kiln:.2f}x |")
for f in sys.argv[3:]:
    for r in json.load(open(f))["results"]:
        print(f"| {r['command']} | {r['median']:.3f} s | {r['median'] / kiln:.2f}x |")
print(f"\nkiln / floor, median of {len(pairs)} alternating pairs: {ratio:.2f}x; "
      f"kiln / (floor + sync): {ratio_durable:.2f}x "
      f"(kiln/floor+sync: {', '.join(f'{k:.2f}/{f:.2f}+{y:.2f}' for k, f, y in pairs)})")
PY2
    eval "$prep_kiln"
    echo "kiln peak RSS (context cold): $(peak_rss "$kiln" --root "$cold/next" build -q -t bench-ctx "$d")" >>"$results"
    [ $have_buildah = 1 ] && { buildah rm -a >/dev/null 2>&1 || true; }
    rm -rf "$cold"
    ;;
  ctx-one)
    mk_ctx; d=$work/ctx
    "$kiln" build -q -t bench-ctx "$d" >/dev/null
    [ $have_docker = 1 ] && bk -t bench-ctx "$d"
    [ $have_buildah = 1 ] && ba -t bench-ctx "$d"
    one="$d/src/d000/s0/f00000.bin"
    cmds=(-n "kiln build (one file changed)" "$kiln build -q -t bench-ctx $d")
    [ $have_docker = 1 ] && cmds+=(-n "BuildKit (one file changed)" "DOCKER_BUILDKIT=1 $docker build --network=host -q -t bench-ctx $d")
    [ $have_buildah = 1 ] && cmds+=(-n "buildah bud (one file changed)" "buildah bud --layers --network=host -q -t bench-ctx $d")
    compare ctx-one "date +%s%N >> $one" "${cmds[@]}"
    echo "kiln peak RSS (one file changed): $(date +%s%N >>"$one"; peak_rss "$kiln" build -q -t bench-ctx "$d")" >>"$results"
    ;;
  stages)
    mk_stages; d=$work/stages
    cmds=(-n "kiln build (4 stages x sleep 1)" "$kiln build -q --no-cache -t bench-stages $d")
    [ $have_docker = 1 ] && cmds+=(-n "BuildKit (4 stages x sleep 1)" "DOCKER_BUILDKIT=1 $docker build --network=host -q --no-cache -t bench-stages $d")
    [ $have_buildah = 1 ] && cmds+=(-n "buildah bud --jobs 4 (4 stages x sleep 1)" "buildah bud --layers --no-cache --jobs 4 --network=host -q -t bench-stages $d")
    compare stages "" "${cmds[@]}"
    ;;
  *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
cat "$results"
