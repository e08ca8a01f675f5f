#!/usr/bin/env bash
# Image sizes of the examples (issue 5): the fat image `distill build`
# makes, the slim image `distill slim` makes from it (verified), buildah's
# build of the same Dockerfile (same mmdebstrap bases, --runtime runc), and
# the published size of the Google distroless base the program would
# otherwise sit on. Sizes are uncompressed (what `docker images` shows).
#
#   bench/slim/run.sh              # all examples; table on stdout
#   NO_BUILDAH=1 bench/slim/run.sh # skip buildah
#
# DISTILL: the distill binary (default: target/release/distill).
# The base rootfs tars come from scripts/base-images' cache
# (${DISTILL_TEST_CACHE:-/var/tmp/distill-test}); stores live under
# ${BENCH_DIR:-/var/tmp/distill-bench}/slim.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
DISTILL=${DISTILL:-$repo/target/release/distill}
BENCH_DIR=${BENCH_DIR:-/var/tmp/distill-bench}/slim
cache=${DISTILL_TEST_CACHE:-/var/tmp/distill-test}
PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
log() { echo "bench/slim: $*" >&2; }

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
export DISTILL_ROOT=$BENCH_DIR/store
DISTILL_TEST_CACHE=$cache DISTILL=$DISTILL scripts/base-images >&2

have_buildah=0
if [[ -z ${NO_BUILDAH:-} ]] && command -v buildah >/dev/null && command -v podman >/dev/null; then
  have_buildah=1
  BH_ROOT=$BENCH_DIR/buildah
  BH=(buildah --root "$BH_ROOT/root" --runroot "$BH_ROOT/run" --storage-driver overlay)
  for spec in debian:bookworm:bookworm-minbase debian-python:bookworm:bookworm-python3 \
      debian-gcc:bookworm:bookworm-gcc debian-dev:bookworm:bookworm-dev; do
    name=${spec%:*}; stem=${spec##*:}
    log "buildah: importing $stem.tar as localhost/$name"
    podman --root "$BH_ROOT/root" --runroot "$BH_ROOT/run" --storage-driver overlay \
      import --change "$PATH_ENV" "$cache/$stem.tar" "localhost/$name" >/dev/null
  done
fi

bytes() { "$DISTILL" images --format json "$1" | sed -n 's/.*"VirtualSize":\([0-9]*\).*/\1/p'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# example | distroless base it would sit on | its published size
rows=(
  "calculator|python3-debian12|52 MiB"
  "c-sha256|cc-debian12|25 MiB"
  "rust-threads|cc-debian12|25 MiB"
  "getpwnam|base-debian12|21 MiB"
  "static|static-debian12|2 MiB"
)
echo "| example | fat (distill build) | slim (distill slim, verified) | slim/fat | buildah build | distroless base alone |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
for row in "${rows[@]}"; do
  IFS='|' read -r ex base basesize <<<"$row"
  log "$ex: distill build + slim"
  "$DISTILL" build -q -t "$ex-fat" "examples/$ex" >/dev/null
  "$DISTILL" slim "$ex-fat" -t "$ex-slim" >&2
  fat=$(bytes "$ex-fat"); slim=$(bytes "$ex-slim")
  bh="—"
  if ((have_buildah)); then
    log "$ex: buildah bud"
    "${BH[@]}" bud --runtime runc --network host --layers -q -t "$ex" "examples/$ex" >/dev/null
    bh=$(mib "$(podman --root "$BH_ROOT/root" --runroot "$BH_ROOT/run" --storage-driver overlay \
      image inspect --format '{{.Size}}' "localhost/$ex")")
  fi
  ratio=$(awk -v a="$slim" -v b="$fat" 'BEGIN { printf "%.3f", a / b }')
  echo "| $ex | $(mib "$fat") | $(mib "$slim") | $ratio | $bh | $base ≈ $basesize |"
done
