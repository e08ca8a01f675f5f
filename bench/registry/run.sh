#!/usr/bin/env bash
# Registry transfer throughput over loopback: distill push / pull of a
# ~200 MB, 5-layer image against `skopeo copy` of the same image, to and
# from the same docker-registry (Debian's distribution 2.x) in the same run.
#
#   bench/registry/run.sh
#   LAYERS=5 LAYER_MB=40 RUNS=3 bench/registry/run.sh
#
# Layers are gzip'd random data, so neither tool compresses anything on the
# way (skopeo would gzip uncompressed layers for a registry): both move the
# same bytes. distill also verifies every layer's diff_id on pull
# (decompress + tar scan), which `skopeo copy … oci:` does not.
# Prints a markdown table: best of $RUNS, throughput over the blob bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."

LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-40}
RUNS=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

for tool in docker-registry skopeo tar gzip python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/install-test-deps)" >&2; exit 1; }
done
cargo build --release -q -p distill
DISTILL=$CARGO_TARGET_DIR/release/distill

work=$(mktemp -d /var/tmp/distill-bench-registry.XXXXXX)
registry_pid=
cleanup() {
  # `|| true`: under set -e a killed server's exit status would skip the rm.
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
  sleep 0.1
done
host=127.0.0.1:$port

# The image: a docker-archive of $LAYERS gzip'd layers, loaded into store A.
echo "making a $LAYERS x $LAYER_MB MB image ..." >&2
img=$work/img
mkdir -p "$img"
python3 - "$img" "$LAYERS" "$LAYER_MB" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, layers, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
diff_ids, names = [], []
for i in range(layers):
    data = os.urandom(mb << 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(f"layer{i}/data"); info.size = len(data); info.mtime = 1700000000
        t.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    name = f"layer{i}.tar.gz"
    with open(os.path.join(out, name), "wb") as f:
        f.write(gzip.compress(raw, compresslevel=1, mtime=0))
    names.append(name)
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cname = hashlib.sha256(config).hexdigest() + ".json"
open(os.path.join(out, cname), "wb").write(config)
json.dump([{"Config": cname, "RepoTags": ["bench:v1"], "Layers": names}], open(os.path.join(out, "manifest.json"), "w"))
PY
(cd "$img" && tar -cf "$work/image.tar" ./*)
rm -rf "$img"
export DISTILL_ROOT=$work/store-a
"$DISTILL" load -q -i "$work/image.tar"
bytes=$(du -cb "$work"/store-a/blobs/sha256/* | tail -1 | cut -f1)
mb=$(python3 -c "print(round($bytes / 1e6, 1))")

# Before every push: an empty registry, so every blob really travels (skopeo
# would otherwise mount blobs it remembers from its previous run).
reset_registry() { rm -rf "$work/storage/docker"; }

best() { # best wall time of $RUNS runs of "$@" with @N@ replaced by the run number
  local best=
  for n in $(seq "$RUNS"); do
    local start end t
    [ -n "${RESET:-}" ] && reset_registry
    start=$(date +%s.%N)
    eval "${*//@N@/$n}" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    end=$(date +%s.%N)
    t=$(python3 -c "print($end - $start)")
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(not ($t < $best))"; then best=$t; fi
  done
  echo "$best"
}

push_d=$(RESET=1 best "'$DISTILL' push bench:v1 $host/bench/distill-push-@N@:v1")
push_s=$(RESET=1 best "skopeo copy -q --dest-tls-verify=false oci:$work/store-a:bench:v1 docker://$host/bench/skopeo-push-@N@:v1")
"$DISTILL" push -q bench:v1 "$host/bench/source:v1" >/dev/null
pull_d=$(best "DISTILL_ROOT=$work/pull-d-@N@ '$DISTILL' pull -q $host/bench/source:v1")
pull_s=$(best "skopeo copy -q --src-tls-verify=false docker://$host/bench/source:v1 oci:$work/pull-s-@N@:x")

row() { python3 -c "
d, s, mb = $2, $3, $mb
print(f'| $1 | {d:.2f} s ({mb / d:.0f} MB/s) | {s:.2f} s ({mb / s:.0f} MB/s) | {d / s:.2f}x |')"; }
echo
echo "$LAYERS layers, $mb MB of blobs, loopback, best of $RUNS"
echo
echo "| transfer | distill | skopeo copy | ratio |"
echo "| --- | --- | --- | --- |"
row push "$push_d" "$push_s"
row pull "$pull_d" "$pull_s"
