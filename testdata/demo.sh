#!/usr/bin/env bash
# The README's first command: sets kiln up on a fresh machine and runs its main
# job offline — build an example image (with RUN steps) from a busybox base made
# from Debian's busybox-static, then run it.
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/install-deps
cargo build --release
kiln=target/release/kiln
export KILN_ROOT=${KILN_ROOT:-$PWD/target/demo-root}
if ! "$kiln" inspect busybox:latest >/dev/null 2>&1; then
  testdata/make-busybox-rootfs.sh target/busybox-rootfs.tar
  "$kiln" import --change 'CMD ["sh"]' target/busybox-rootfs.tar busybox:latest
fi
"$kiln" build --progress=plain -t kiln-demo:latest testdata/demo
"$kiln" run --rm kiln-demo:latest
"$kiln" images
