#!/usr/bin/env bash
# kiln build against BuildKit (`docker build` on Debian's docker.io 20.10,
# a private dockerd started here) and `buildah bud`, when installed:
#
#   1. a fully cached rebuild of a small multi-stage Dockerfile;
#   2. a cold build of the same Dockerfile (empty build cache);
#   3. a 20,000-file, 400 MB context copied cold, beside this machine's
#      floor for it (`tar -C CTX -cf - . | tar -C DIR-IN-STATE -xf -`);
#   4. the same after one file changed;
#   5. four independent stages that each sleep 1 s.
#
#   bench/build.sh [WORKDIR] [RUNS]
#
# WORKDIR (default target/bench-build) holds the state directories, the
# generated context and the results; it must be on the disk kiln's state
# lives on. Prints a table of medians (hyperfine), ratios to kiln, and
# kiln's peak RSS per scenario; writes it to WORKDIR/results.md.
# Needs root (namespaces, overlayfs), hyperfine, python3, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=${1:-target/bench-build}
runs=${2:-5}
mkdir -p "$work"
work=$(realpath "$work")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release --bin kiln >&2
kiln_bin=${KILN:-$CARGO_TARGET_DIR/release/kiln}
results=$work/results
rm -rf "$results"; mkdir -p "$results"

# ---------- fixtures: a busybox image archive and the Dockerfiles ----------
bb=$work/busybox.tar
if [ ! -f "$bb" ]; then
  rootfs=$work/bb-rootfs
  rm -rf "$rootfs"; mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf /bin/busybox "$rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\n' > "$rootfs/etc/group"
  tar -C "$rootfs" -cf "$work/bb-layer.tar" .
  r=$work/bb-store; rm -rf "$r"
  "$kiln_bin" --root "$r" import -c 'CMD ["sh"]' "$work/bb-layer.tar" busybox:latest >/dev/null
  "$kiln_bin" --root "$r" save -o "$bb" busybox:latest
  rm -rf "$r" "$rootfs"
fi

small=$work/small
mkdir -p "$small/src"
for i in $(seq 1 20); do echo "source $i" > "$small/src/f$i.txt"; done
cat > "$small/Dockerfile" <<'EOF'
FROM busybox AS deps
RUN mkdir -p /deps && for i in 1 2 3 4 5; do echo dep$i > /deps/$i; done
FROM busybox AS build
COPY --from=deps /deps /deps
COPY src /src
RUN cat /src/*.txt /deps/* > /out
FROM busybox
COPY --from=build /out /app/out
ENV APP=/app
WORKDIR /app
CMD ["cat", "/app/out"]
EOF

big=$work/big
if [ ! -f "$big/.generated" ]; then
  rm -rf "$big"; mkdir -p "$big/ctx"
  echo "generating 20,000 files, 400 MB in $big/ctx" >&2
  python3 - "$big/ctx" 20000 400 <<'PY'
import os, sys
ctx, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mb * 1024 * 1024 // n
rnd = os.urandom(1 << 20)
for i in range(n):
    d = os.path.join(ctx, f"d{i % 200:03}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    off = (i * 7919) % ((1 << 20) - size)
    with open(os.path.join(d, f"f{i:05}.bin"), "wb") as f:
        f.write(rnd[off:off + size])
PY
  touch "$big/.generated"
fi
printf 'FROM busybox\nCOPY ctx /ctx/\n' > "$big/Dockerfile"

par=$work/par
mkdir -p "$par"
{
  for s in 1 2 3 4; do printf 'FROM busybox AS s%s\nRUN sleep 1 && echo %s > /n%s\n' "$s" "$s" "$s"; done
  printf 'FROM busybox\n'
  for s in 1 2 3 4; do printf 'COPY --from=s%s /n%s /n%s\n' "$s" "$s" "$s"; done
} > "$par/Dockerfile"

# ---------- tools ----------
k_root=$work/kiln-root
kiln() { "$kiln_bin" --root "$k_root" "$@"; }
kiln_fresh() { rm -rf "$k_root"; "$kiln_bin" --root "$k_root" load -q -i "$bb"; }

have_docker=0
dockerd_pid=""
if command -v dockerd >/dev/null && [ -x /usr/bin/docker ]; then
  dsock=$work/docker/d.sock
  mkdir -p "$work/docker"
  if [ ! -S "$dsock" ] || ! DOCKER_HOST=unix://$dsock /usr/bin/docker info >/dev/null 2>&1; then
    dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" \
      -H "unix://$dsock" --pidfile "$work/docker/d.pid" --bridge=none \
      --iptables=false --ip6tables=false >"$work/docker/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 60); do
      DOCKER_HOST=unix://$dsock /usr/bin/docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
  if DOCKER_HOST=unix://$dsock /usr/bin/docker info >/dev/null 2>&1; then
    have_docker=1
    export DOCKER_HOST=unix://$dsock DOCKER_BUILDKIT=1
    /usr/bin/docker load -q -i "$bb" >/dev/null
  fi
fi
cleanup() {
  if [ -n "$dockerd_pid" ]; then kill "$dockerd_pid" 2>/dev/null || true; wait "$dockerd_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
dbuild() { /usr/bin/docker build --network=host -q "$@" >/dev/null; }

have_buildah=0
bh_root=$work/buildah
BAH="buildah --root $bh_root/root --runroot $bh_root/run --storage-driver overlay"
runtime=""
[ -x /usr/sbin/runc ] && runtime="--runtime /usr/sbin/runc"
BUD="$BAH bud $runtime --layers --network host -q"
if command -v buildah >/dev/null && $BAH pull -q "docker-archive:$bb" >/dev/null 2>&1; then
  have_buildah=1
fi

# hyperfine wrapper: name, prepare, command
hf() {
  local out=$1; shift
  hyperfine --style basic --runs "$runs" --export-json "$results/$out.json" "$@" >&2
}
peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }

# ---------- 1. fully cached rebuild ----------
kiln_fresh; kiln build -q -t small "$small" >/dev/null
args=(-n kiln --warmup 3 "$kiln_bin --root $k_root build -q -t small $small")
if [ $have_docker = 1 ]; then dbuild -t small "$small"; args+=(-n buildkit "/usr/bin/docker build --network=host -q -t small $small"); fi
if [ $have_buildah = 1 ]; then $BUD -t small "$small" >/dev/null; args+=(-n buildah "$BUD -t small $small"); fi
hf cached -N "${args[@]}"
echo "cached $(peak "$kiln_bin" --root "$k_root" build -q -t small "$small")" >> "$results/rss"

# ---------- 2. cold multi-stage build ----------
args=(-n kiln --prepare "rm -rf $k_root && $kiln_bin --root $k_root load -q -i $bb" "$kiln_bin --root $k_root build -q -t small $small")
[ $have_docker = 1 ] && args+=(-n buildkit --prepare "bash -c 'DOCKER_HOST=$DOCKER_HOST /usr/bin/docker builder prune -af >/dev/null'" "/usr/bin/docker build --network=host -q -t small $small")
[ $have_buildah = 1 ] && args+=(-n buildah --prepare "bash -c '$BAH rmi -f small >/dev/null 2>&1; $BAH rmi --prune >/dev/null 2>&1; true'" "$BUD -t small $small")
hf cold "${args[@]}"
kiln_fresh; echo "cold $(peak "$kiln_bin" --root "$k_root" build -q -t small "$small")" >> "$results/rss"

# ---------- 3. 20,000-file context, cold, and the tar|tar floor ----------
# Each run writes into a fresh directory (a fresh state directory for
# kiln) and nothing is deleted between runs: ext4 allocates inodes slowly
# right after a mass deletion ("recently deleted" inodes are skipped), which
# would otherwise penalise whoever runs after a cleanup. BuildKit's own
# cleanup (`builder prune`) cannot be avoided; it is done before each run.
fresh=$work/fresh
rm -rf "$fresh"; mkdir -p "$fresh"; echo 0 > "$fresh/n"
next='n=$(( $(cat '"$fresh"'/n) + 1 )); echo $n > '"$fresh"'/n'
args=(-n floor --prepare "bash -c '$next; mkdir -p $fresh/floor-\$n; ln -sfn floor-\$n $fresh/floor; sync'" "bash -c 'tar -C $big -cf - ctx | tar -C $fresh/floor/ -xf -'")
args+=(-n kiln --prepare "bash -c '$next; $kiln_bin --root $fresh/kiln-\$n load -q -i $bb; ln -sfn kiln-\$n $fresh/kiln; sync'" "$kiln_bin --root $fresh/kiln build -q -t big $big")
[ $have_docker = 1 ] && args+=(-n buildkit --prepare "bash -c 'DOCKER_HOST=$DOCKER_HOST /usr/bin/docker builder prune -af >/dev/null; sync'" "/usr/bin/docker build --network=host -q -t big $big")
[ $have_buildah = 1 ] && args+=(-n buildah --prepare "bash -c '$BAH rmi -f big >/dev/null 2>&1; $BAH rmi --prune >/dev/null 2>&1; sync'" "$BUD -t big $big")
runs_saved=$runs; runs=$(( runs < 3 ? runs : 3 ))
hf bigcold "${args[@]}"
n=$(( $(cat "$fresh/n") + 1 )); "$kiln_bin" --root "$fresh/kiln-$n" load -q -i "$bb"; sync
echo "bigcold $(peak "$kiln_bin" --root "$fresh/kiln-$n" build -q -t big "$big")" >> "$results/rss"
rm -rf "$fresh"

# ---------- 4. after one file changed ----------
f=$big/ctx/d000/s0/f00000.bin
args=(-n kiln --prepare "bash -c 'echo \$RANDOM >> $f'" "$kiln_bin --root $k_root build -q -t big $big")
[ $have_docker = 1 ] && { dbuild -t big "$big"; args+=(-n buildkit --prepare "bash -c 'echo \$RANDOM >> $f'" "/usr/bin/docker build --network=host -q -t big $big"); }
[ $have_buildah = 1 ] && { $BUD -t big "$big" >/dev/null; args+=(-n buildah --prepare "bash -c 'echo \$RANDOM >> $f'" "$BUD -t big $big"); }
kiln_fresh; kiln build -q -t big "$big" >/dev/null
hf bigchanged "${args[@]}"
echo "$RANDOM" >> "$f"; echo "bigchanged $(peak "$kiln_bin" --root "$k_root" build -q -t big "$big")" >> "$results/rss"
runs=$runs_saved

# ---------- 5. four stages sleeping 1 s ----------
args=(-n kiln --prepare "rm -rf $k_root && $kiln_bin --root $k_root load -q -i $bb" "$kiln_bin --root $k_root build -q --jobs 4 -t par $par")
[ $have_docker = 1 ] && args+=(-n buildkit --prepare "bash -c 'DOCKER_HOST=$DOCKER_HOST /usr/bin/docker builder prune -af >/dev/null'" "/usr/bin/docker build --network=host -q -t par $par")
[ $have_buildah = 1 ] && args+=(-n buildah --prepare "bash -c '$BAH rmi -f par >/dev/null 2>&1; $BAH rmi --prune >/dev/null 2>&1; true'" "$BUD --jobs 4 -t par $par")
hf parallel "${args[@]}"
kiln_fresh; echo "parallel $(peak "$kiln_bin" --root "$k_root" build -q --jobs 4 -t par "$par")" >> "$results/rss"

# ---------- table ----------
python3 - "$results" <<'PY' | tee "$results/../results.md"
import json, os, sys
d = sys.argv[1]
rss = dict(l.split() for l in open(os.path.join(d, "rss")))
rows = [("cached", "fully cached rebuild"), ("cold", "cold multi-stage build"),
        ("bigcold", "20,000 files / 400 MB context, cold"),
        ("bigchanged", "same, after one file changed"),
        ("parallel", "4 stages x sleep 1 s")]
print("| scenario | kiln | BuildKit | buildah | BuildKit / kiln | floor (tar\\|tar) | kiln / floor | kiln peak RSS |")
print("|---|---|---|---|---|---|---|---|")
for key, title in rows:
    p = os.path.join(d, key + ".json")
    if not os.path.exists(p):
        continue
    med = {r["command"]: r["median"] for r in json.load(open(p))["results"]}
    def fmt(v):
        if v is None: return "–"
        return f"{v*1000:.1f} ms" if v < 1 else f"{v:.2f} s"
    k = med.get("kiln"); b = med.get("buildkit"); h = med.get("buildah"); fl = med.get("floor")
    ratio = f"{b/k:.1f}x" if (b and k) else "–"
    fr = f"{k/fl:.2f}x" if (fl and k) else "–"
    print(f"| {title} | {fmt(k)} | {fmt(b)} | {fmt(h)} | {ratio} | {fmt(fl)} | {fr} | {int(rss.get(key, 0))/1024:.0f} MB |")
PY
