#!/usr/bin/env bash
# Layer write throughput: distill's layer writer (examples/write_layer.rs,
# release build: tar + sha256 diff_id + compression + sha256 digest, one
# pass) against shell pipelines doing less work (tar | compressor, no
# hashing), on the same ~200 MB tree of real files, in the same run.
#
#   bench/layer/run.sh            # tree cached under /var/tmp
#   TARGET_MB=400 RUNS=5 bench/layer/run.sh
#
# Prints a markdown table: best of $RUNS (hyperfine if installed, else a
# loop timed with date), throughput over the uncompressed tar size, and the
# output size.
set -euo pipefail
cd "$(dirname "$0")/../.."

TREE=${TREE:-/var/tmp/distill-bench-layer-tree}
TARGET_MB=${TARGET_MB:-200}
RUNS=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

for tool in tar gzip pigz zstd python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y pigz zstd)" >&2; exit 1; }
done

# The tree: /usr/include (text, many small files) plus shared libraries
# from /usr/lib/x86_64-linux-gnu (binaries) up to TARGET_MB.
if [ ! -f "$TREE.complete" ]; then
  echo "building the tree in $TREE ..." >&2
  rm -rf "$TREE"
  mkdir -p "$TREE/usr/lib/x86_64-linux-gnu"
  cp -a /usr/include "$TREE/usr/include"
  budget=$((TARGET_MB * 1024 * 1024))
  used=$(du -sb "$TREE" | cut -f1)
  libdir=/usr/lib/x86_64-linux-gnu
  [ -d "$libdir" ] || libdir=/usr/lib
  for f in "$libdir"/*; do
    [ "$used" -ge "$budget" ] && break
    s=$(du -sb "$f" | cut -f1)
    [ $((used + s)) -gt $((budget + budget / 20)) ] && continue
    cp -a "$f" "$TREE/usr/lib/x86_64-linux-gnu/"
    used=$((used + s))
  done
  touch "$TREE.complete"
fi

cargo build --release -q -p distill-image --example write_layer
BIN=$CARGO_TARGET_DIR/release/examples/write_layer

files=$(find "$TREE" | wc -l)
tar_bytes=$(tar -C "$TREE" -cf - . | wc -c)
echo "tree: $TREE, $files entries, tar $((tar_bytes / 1000000)) MB; $(nproc) cores; best of $RUNS" >&2

names=(
  "distill gzip -6 (2 threads, +2×sha256)"
  "distill zstd -3 (2 workers, +2×sha256)"
  "tar | pigz -6"
  "tar | gzip -6"
  "tar | zstd -3 -T2"
)
cmds=(
  "$BIN $TREE --compression gzip --level 6 -o /dev/null"
  "$BIN $TREE --compression zstd --level 3 -o /dev/null"
  "tar -C $TREE -cf - . | pigz -6 > /dev/null"
  "tar -C $TREE -cf - . | gzip -6 > /dev/null"
  "tar -C $TREE -cf - . | zstd -q -3 -T2 > /dev/null"
)
size_cmds=(
  ""
  ""
  "tar -C $TREE -cf - . | pigz -6"
  "tar -C $TREE -cf - . | gzip -6"
  "tar -C $TREE -cf - . | zstd -q -3 -T2"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Output sizes (one extra run each).
sizes=()
for i in "${!cmds[@]}"; do
  case $i in
    0) "$BIN" "$TREE" --compression gzip --level 6 -o "$tmp/out" >/dev/null ;;
    1) "$BIN" "$TREE" --compression zstd --level 3 -o "$tmp/out" >/dev/null ;;
    *) bash -c "${size_cmds[$i]} > $tmp/out" ;;
  esac
  sizes+=("$(stat -c %s "$tmp/out")")
done

best=()
if command -v hyperfine >/dev/null; then
  args=()
  for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
  hyperfine --warmup 1 --runs "$RUNS" --export-json "$tmp/h.json" "${args[@]}" >&2
  mapfile -t best < <(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(min(r["times"]))
' "$tmp/h.json")
else
  for i in "${!cmds[@]}"; do
    b=""
    bash -c "${cmds[$i]}" >/dev/null # warm-up
    for _ in $(seq "$RUNS"); do
      s=$(date +%s.%N)
      bash -c "${cmds[$i]}" >/dev/null
      e=$(date +%s.%N)
      b=$(python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); b=sys.argv[3]; print(t if b=='' or t<float(b) else b)" "$s" "$e" "$b")
    done
    best+=("$b")
  done
fi

python3 - "$tar_bytes" "${#cmds[@]}" "${names[@]}" "${best[@]}" "${sizes[@]}" <<'PY'
import sys
tar = int(sys.argv[1]); n = int(sys.argv[2])
names = [s.replace("|", "\\|") for s in sys.argv[3:3 + n]]
best = [float(x) for x in sys.argv[3 + n:3 + 2 * n]]
sizes = [int(x) for x in sys.argv[3 + 2 * n:3 + 3 * n]]
ref = {0: 3, 1: 4}  # distill gzip vs tar|gzip, distill zstd vs tar|zstd
print(f"| command | best of runs (s) | MB/s (tar {tar/1e6:.0f} MB) | output MB | ratio | time vs baseline |")
print("|---|---:|---:|---:|---:|---|")
for i in range(n):
    vs = ""
    if i in ref:
        j = ref[i]
        vs = f"{best[i]/best[j]:.2f}× of {names[j]}; {best[i]/best[2]:.2f}× of {names[2]}"
    print(f"| {names[i]} | {best[i]:.2f} | {tar/1e6/best[i]:.0f} | {sizes[i]/1e6:.1f} | {sizes[i]/tar:.3f} | {vs} |")
PY
