#!/usr/bin/env bash
# Sandbox start-up overhead: run /bin/true in a fresh sandbox on a busybox
# layer, with kiln's executor and (when it works here) with `buildah run` on
# the same busybox root filesystem. Reports medians and their ratio.
#
#   bench/sandbox-start.sh [ITERATIONS]        (as root; default 100)
#
# Target (issue 4): kiln's median sandbox run under 20 ms.
#
# Three kiln numbers:
#   run      the sandbox alone (helper, namespaces, pivot_root, mounts,
#            exec, wait, teardown) on an existing snapshot — what
#            `buildah run` on an existing container does;
#   total    prepare snapshot + run + discard, in-process;
#   process  one whole `sandbox_bench once` process per run, under
#            hyperfine, exactly like the `buildah run` command line.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
: "${CARGO_TARGET_DIR:=target}"
WORK=${KILN_BENCH_DIR:-/var/tmp/kiln-bench}
mkdir -p "$WORK"

[ "$(id -u)" = 0 ] || { echo "run as root (namespaces, overlayfs)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine is missing" >&2; exit 1; }

cargo build --quiet --release -p executor --example sandbox_bench
BENCH="$CARGO_TARGET_DIR/release/examples/sandbox_bench"

echo "== kiln executor, in-process ($N iterations)"
"$BENCH" "$N" "$WORK" | tee "$WORK/kiln.txt"
KILN_SNAPSHOTTER=copy "$BENCH" "$((N / 4 + 1))" "$WORK"

median() { jq '.results[0].median * 1000' "$1"; }

echo "== kiln executor, one process per run (hyperfine)"
hyperfine --style basic --warmup 5 --runs "$N" -N \
  --export-json "$WORK/kiln.json" "$BENCH once $WORK" >/dev/null
KILN_MS=$(median "$WORK/kiln.json")
printf 'kiln process median: %.2f ms\n' "$KILN_MS"

echo "== buildah run on the same busybox root filesystem"
if ! command -v buildah >/dev/null; then
  echo "buildah is not installed: no comparison"; exit 0
fi
CTR=kiln-bench-$$
buildah rm "$CTR" >/dev/null 2>&1 || true
buildah from --name "$CTR" scratch >/dev/null
trap 'buildah rm "$CTR" >/dev/null 2>&1 || true' EXIT
MNT=$(buildah mount "$CTR")
cp -a "$WORK/busybox/." "$MNT/"
buildah umount "$CTR" >/dev/null
# crun refuses hybrid cgroup hierarchies (this machine); runc copes.
RUNTIME=()
if ! buildah run "$CTR" /bin/true 2>/dev/null; then
  RUNTIME=(--runtime "$(command -v runc)")
  buildah run "${RUNTIME[@]}" "$CTR" /bin/true
fi
BRUNS=$(( N < 30 ? N : 30 ))
hyperfine --style basic --warmup 3 --runs "$BRUNS" -N \
  --export-json "$WORK/buildah.json" "buildah run ${RUNTIME[*]} $CTR /bin/true" >/dev/null
BUILDAH_MS=$(median "$WORK/buildah.json")
printf 'buildah run median:  %.2f ms\n' "$BUILDAH_MS"
python3 -c "k=$KILN_MS; b=$BUILDAH_MS; print(f'ratio buildah/kiln (whole process): {b/k:.1f}x')"
