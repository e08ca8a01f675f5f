#!/usr/bin/env bash
# Build benchmarks (issue 4 "Bench"): distill against buildah in the same
# run, and BuildKit (Docker's daemon, docker.io 20.10 with DOCKER_BUILDKIT=1)
# where a daemon runs.
#
#   bench/build/run.sh              # everything: a b c d
#   bench/build/run.sh a b          # a subset
#   RUNS=5 bench/build/run.sh d     # more runs (default 3; rebuilds 10)
#   NO_BUILDKIT=1 / NO_BUILDAH=1    # leave a tool out
#   DISTILL=path/to/distill         # skip `cargo build --release -p distill`
#
#   (a) six independent stages, each `RUN sleep 1 …`, fanned into a final
#       stage that COPYs from all six: cold build (empty build cache).
#       Target: distill <= 1.5 s.
#   (b) unchanged rebuild of examples/calculator and of (a).
#       Target: distill <= 100 ms each.
#   (c) `RUN cp -a /usr /usr2` on the python3 base (~204 MB in /usr), build
#       plus export to an OCI archive. Target: distill >= 2x faster than
#       buildah bud + buildah push oci-archive:.
#   (d) `COPY src /src` of a generated 30,000-file, ~350 MB context
#       (gen-context.py, fixed seed): cold build, unchanged rebuild, rebuild
#       after rewriting one file. Targets: cold <= 1/2 of BuildKit's time,
#       unchanged <= 100 ms, one changed file <= 2 s.
#
# Fairness: all three tools build from the same Debian rootfs tars
# (mmdebstrap --variant=minbase bookworm [+python3]), imported with the same
# PATH; RUN steps use the host network everywhere (distill's default; buildah
# and BuildKit get --network host); buildah runs stages in parallel
# (--jobs 6) with runc and overlay storage; every tool has its own private
# store under $BENCH_DIR and the base images are already unpacked before
# anything is timed. "Cold" means an empty build cache with the base image
# present: for distill a fresh copy of a store holding only the imported
# (and already extracted) bases, so no cached step or context hash; for
# buildah --no-cache (its default without --layers keeps nothing anyway);
# for BuildKit `docker builder prune -af` before each run (which also drops
# its copy of the context). Files are in the page cache for every tool.
#
# Prints progress on stderr and a markdown table on stdout: median wall time
# over the runs (hyperfine), the ratio distill/other (below 1: distill is
# faster), and whether the target is met.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
HERE=$REPO/bench/build

BENCH_DIR=${BENCH_DIR:-/var/tmp/distill-bench}
BASE_CACHE=${DISTILL_TEST_CACHE:-/var/tmp/distill-test}
RUNS=${RUNS:-3}
REBUILD_RUNS=${REBUILD_RUNS:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

want=("$@")
((${#want[@]})) || want=(a b c d)
for w in "${want[@]}"; do
  case $w in a | b | c | d) ;; *) echo "unknown benchmark $w (a b c d)" >&2; exit 2 ;; esac
done
wants() { local w; for w in "${want[@]}"; do [[ $w == "$1" ]] && return 0; done; return 1; }

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
for tool in hyperfine python3 mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y $tool)" >&2; exit 1; }
done

mkdir -p "$BENCH_DIR"
W=$BENCH_DIR/work
rm -rf "$W"
mkdir -p "$W"
RESULTS=$W/results.tsv
: >"$RESULTS"

# ---------------------------------------------------------------- tools ---
if [[ -z ${DISTILL:-} ]]; then
  log "cargo build --release -p distill ($CARGO_TARGET_DIR)"
  cargo build --release -q -p distill
  DISTILL=$CARGO_TARGET_DIR/release/distill
fi
DISTILL=$(realpath "$DISTILL")

HAVE_BUILDAH=0
if [[ -z ${NO_BUILDAH:-} ]] && command -v buildah >/dev/null && command -v runc >/dev/null; then
  HAVE_BUILDAH=1
fi
BH_ROOT=$BENCH_DIR/buildah
BH="buildah --root $BH_ROOT/root --runroot $BH_ROOT/run --storage-driver overlay"
BUD="$BH bud --runtime runc --pull-never --isolation oci --network host --jobs 6 -q"

# BuildKit: a private dockerd (own socket, data root, no iptables, no
# bridge) unless $DOCKER_HOST already answers. Stopped on exit if started here.
HAVE_BUILDKIT=0
DOCKERD_PID=""
DK=/usr/bin/docker # the Debian client: builds with the daemon's BuildKit, no buildx needed
start_dockerd() {
  [[ -z ${NO_BUILDKIT:-} ]] || return 0
  if [[ ! -x $DK ]] || ! command -v dockerd >/dev/null; then
    log "no BuildKit columns: /usr/bin/docker or dockerd missing (apt-get install -y docker.io)"
    return 0
  fi
  if [[ -z ${DOCKER_HOST:-} ]]; then
    local d=$BENCH_DIR/docker
    mkdir -p "$d"
    export DOCKER_HOST=unix://$d/docker.sock
    if ! $DK info >/dev/null 2>&1; then
      log "starting dockerd (data root $d/data)"
      setsid dockerd --iptables=false --ip6tables=false --bridge=none \
        --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
        -H "$DOCKER_HOST" >"$d/dockerd.log" 2>&1 &
      DOCKERD_PID=$!
      for _ in $(seq 60); do $DK info >/dev/null 2>&1 && break; sleep 0.5; done
    fi
  fi
  if $DK info >/dev/null 2>&1; then
    HAVE_BUILDKIT=1
  else
    log "no BuildKit columns: the Docker daemon does not answer on $DOCKER_HOST; dockerd log:"
    tail -5 "$BENCH_DIR/docker/dockerd.log" >&2 || true
  fi
}
# The changed file of (d), restored on exit.
CHANGED_FILE=""
cleanup() {
  if [[ -n $CHANGED_FILE && -f $W/changed.orig ]]; then
    cp "$W/changed.orig" "$CHANGED_FILE"
  fi
  if [[ -n $DOCKERD_PID ]]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
start_dockerd
export DOCKER_BUILDKIT=1
DKB="$DK build --network host -q"

# ---------------------------------------------------------- base images ---
# The rootfs tars, made once by mmdebstrap (same files and locks as the tests).
rootfs() {
  local stem=$1 include=$2 tar=$BASE_CACHE/$1.tar
  mkdir -p "$BASE_CACHE"
  (
    flock 9
    if [[ ! -s $tar ]]; then
      log "mmdebstrap bookworm ${include:+(+$include) }-> $tar"
      mmdebstrap --variant=minbase ${include:+--include="$include"} --quiet bookworm "$tar.partial.tar"
      mv "$tar.partial.tar" "$tar"
    fi
  ) 9>"$BASE_CACHE/$stem.lock"
}
rootfs bookworm-minbase ""
rootfs bookworm-python3 python3
MINBASE=$BASE_CACHE/bookworm-minbase.tar
PYBASE=$BASE_CACHE/bookworm-python3.tar

# distill: a pristine store with both bases imported and extracted (a tiny
# build on each makes sure the snapshots exist), copied for every cold run.
PRISTINE=$BENCH_DIR/distill-pristine
stamp="$(stat -c %s-%Y "$MINBASE" "$PYBASE" | tr '\n' ' ') $(stat -c %s-%Y "$DISTILL")"
if [[ ! -f $PRISTINE.stamp || $(cat "$PRISTINE.stamp") != "$stamp" ]]; then
  log "distill: importing the bases into $PRISTINE"
  rm -rf "$PRISTINE"
  mkdir -p "$PRISTINE" "$W/warm"
  DISTILL_ROOT=$PRISTINE "$DISTILL" import "$MINBASE" debian:bookworm --change "$PATH_ENV" >/dev/null
  DISTILL_ROOT=$PRISTINE "$DISTILL" import "$PYBASE" debian-python:bookworm --change "$PATH_ENV" >/dev/null
  for b in debian:bookworm debian-python:bookworm; do
    printf 'FROM %s\nRUN true\n' "$b" >"$W/warm/Dockerfile"
    DISTILL_ROOT=$PRISTINE "$DISTILL" build -q "$W/warm" >/dev/null
  done
  echo "$stamp" >"$PRISTINE.stamp"
fi
# The store of warm (cached) runs.
DSTORE=$W/distill
cp -a "$PRISTINE" "$DSTORE"
export DISTILL_ROOT=$DSTORE
COLD=$W/distill-cold
# Prepare command of cold distill runs: a fresh copy of the pristine store.
D_FRESH="rm -rf $COLD && cp -a $PRISTINE $COLD"
DB="$DISTILL build -q"
DBCOLD="DISTILL_ROOT=$COLD $DISTILL build -q"

if ((HAVE_BUILDAH)); then
  for spec in "debian:bookworm|$MINBASE" "debian-python:bookworm|$PYBASE"; do
    name=${spec%%|*} tar=${spec#*|}
    if ! $BH inspect --type image "localhost/$name" >/dev/null 2>&1; then
      log "buildah: importing $tar as localhost/$name"
      podman --root "$BH_ROOT/root" --runroot "$BH_ROOT/run" --storage-driver overlay \
        import --change "$PATH_ENV" "$tar" "localhost/$name" >/dev/null
    fi
  done
fi
if ((HAVE_BUILDKIT)); then
  for spec in "debian:bookworm|$MINBASE" "debian-python:bookworm|$PYBASE"; do
    name=${spec%%|*} tar=${spec#*|}
    if ! $DK image inspect "$name" >/dev/null 2>&1; then
      log "docker: importing $tar as $name"
      $DK import --change "$PATH_ENV" "$tar" "$name" >/dev/null
    fi
  done
fi

# ------------------------------------------------------------ measuring ---
# bench ID LABEL TARGET RUNS PREPARE_D CMD_D PREPARE_BH CMD_BH PREPARE_DK CMD_DK
# Runs hyperfine over the tools present; empty CMD skips a tool. Each command
# runs once untimed first (a check that it works, and the warm-up).
# TARGET: "le:SECONDS" (distill's time at most), "x:N" (distill N times
# faster than buildah), "half:buildkit" (at most half BuildKit's time).
bench() {
  local id=$1 label=$2 target=$3 runs=$4
  local -a prep=("$5" "$7" "$9") cmd=("$6" "$8" "${10}") tool=(distill buildah buildkit)
  local -a args=() names=() preps=() cmds=()
  local i any_prep=0
  for i in 0 1 2; do
    [[ -n ${cmd[$i]} ]] || continue
    ((i != 1 || HAVE_BUILDAH)) || continue
    ((i != 2 || HAVE_BUILDKIT)) || continue
    log "$id: ${tool[$i]}: check run"
    if [[ -n ${prep[$i]} ]]; then bash -c "${prep[$i]}" >/dev/null 2>&1; fi
    if ! bash -c "${cmd[$i]}" >"$W/check.out" 2>&1; then
      log "$id: ${tool[$i]} FAILED: ${cmd[$i]}"
      tail -20 "$W/check.out" >&2
      printf '%s\t%s\t%s\t%s\tFAILED\n' "$id" "$label" "$target" "${tool[$i]}" >>"$RESULTS"
      continue
    fi
    names+=(-n "${tool[$i]}")
    # A failing clean-up (nothing to remove) must not stop hyperfine; sync
    # so that one run's writeback does not land in the next.
    [[ -z ${prep[$i]} ]] || any_prep=1
    preps+=(--prepare "{ ${prep[$i]:-true}; } >/dev/null 2>&1; sync")
    cmds+=("${cmd[$i]}")
  done
  ((${#cmds[@]})) || return 0
  args=("${names[@]}")
  ((!any_prep)) || args+=("${preps[@]}")
  args+=("${cmds[@]}")
  log "$id: hyperfine, $runs runs each"
  hyperfine -S bash --runs "$runs" --export-json "$W/$id.json" "${args[@]}" >&2 || {
    log "$id: hyperfine failed"
    return 0
  }
  python3 - "$W/$id.json" "$id" "$label" "$target" >>"$RESULTS" <<'PY'
import json, statistics, sys
path, id_, label, target = sys.argv[1:5]
for r in json.load(open(path))["results"]:
    t = r["times"]
    print(f"{id_}\t{label}\t{target}\t{r['command']}\t{statistics.median(t):.4f}\t{min(t):.4f}\t{max(t):.4f}\t{len(t)}")
PY
}

# ---------------------------------------------------------------- (a) -----
FAN=$W/fanin
mkdir -p "$FAN"
{
  for n in 1 2 3 4 5 6; do
    printf 'FROM debian:bookworm AS s%d\nRUN sleep 1 && echo %d > /s%d\n\n' "$n" "$n" "$n"
  done
  echo "FROM debian:bookworm"
  for n in 1 2 3 4 5 6; do printf 'COPY --from=s%d /s%d /out/s%d\n' "$n" "$n" "$n"; done
} >"$FAN/Dockerfile"

if wants a; then
  bench a "(a) six-stage fan-in, cold" "le:1.5" "$RUNS" \
    "$D_FRESH" "$DBCOLD -t fanin $FAN" \
    "$BH rmi -f fanin; $BH rmi --prune" "$BUD --no-cache -t fanin $FAN" \
    "$DK builder prune -af" "$DKB -t fanin $FAN"
fi

# ---------------------------------------------------------------- (b) -----
if wants b; then
  # The example, without its `# syntax=` line (BuildKit would pull a
  # frontend image for it; distill ignores it).
  CALC=$W/calculator
  mkdir -p "$CALC"
  cp "$REPO/examples/calculator/calc.py" "$CALC/"
  grep -v '^# syntax=' "$REPO/examples/calculator/Dockerfile" >"$CALC/Dockerfile"
  # Each command's check run is the first (caching) build.
  bench b-calc "(b) calculator, unchanged rebuild" "le:0.1" "$REBUILD_RUNS" \
    "" "$DB -t calc $CALC" \
    "" "$BUD --layers -t calc $CALC" \
    "" "$DKB -t calc $CALC"
  bench b-fanin "(b) fan-in (a), unchanged rebuild" "le:0.1" "$REBUILD_RUNS" \
    "" "$DB -t fanin $FAN" \
    "" "$BUD --layers -t fanin $FAN" \
    "" "$DKB -t fanin $FAN"
fi

# ---------------------------------------------------------------- (c) -----
if wants c; then
  CP=$W/cpusr
  mkdir -p "$CP"
  printf 'FROM debian-python:bookworm\nRUN cp -a /usr /usr2\n' >"$CP/Dockerfile"
  usr_mb=$(python3 -c '
import sys, tarfile
n = s = 0
for m in tarfile.open(sys.argv[1]):
    if m.name.lstrip("./").startswith("usr/"):
        n += 1; s += m.size if m.isfile() else 0
print(f"{s/1e6:.0f} MB in {n} entries")' "$PYBASE")
  log "c: /usr of the python3 base: $usr_mb"
  echo "$usr_mb" >"$W/usr-size"
  bench c "(c) RUN cp -a /usr /usr2 + OCI archive" "x:2" "$RUNS" \
    "$D_FRESH; rm -f $W/c-distill.tar" "$DBCOLD --output type=oci,dest=$W/c-distill.tar -t cpusr $CP" \
    "$BH rmi -f cpusr; $BH rmi --prune; rm -f $W/c-buildah.tar" \
    "$BUD --no-cache -t cpusr $CP && $BH push -q cpusr oci-archive:$W/c-buildah.tar" \
    "$DK builder prune -af; $DK rmi -f cpusr; rm -f $W/c-docker.tar" \
    "$DKB -t cpusr $CP && $DK save -o $W/c-docker.tar cpusr"
  for t in distill buildah docker; do
    [[ -f $W/c-$t.tar ]] && log "c: $t archive $(($(stat -c %s "$W/c-$t.tar") / 1000000)) MB"
  done
fi

# ---------------------------------------------------------------- (d) -----
if wants d; then
  CTX=$BENCH_DIR/ctx-d
  log "d: context $CTX (gen-context.py; cached)"
  python3 "$HERE/gen-context.py" "$CTX"
  files=$(find "$CTX/src" -type f | wc -l)
  bytes=$(du -sb "$CTX/src" | cut -f1)
  echo "$files files, $((bytes / 1000000)) MB" >"$W/ctx-size"
  log "d: $files files, $((bytes / 1000000)) MB"
  find "$CTX/src" -type f -print0 | xargs -0 cat >/dev/null # page cache, for everyone alike

  bench d-cold "(d) COPY 30k files / 350 MB, cold" "half:buildkit" "$RUNS" \
    "$D_FRESH" "$DBCOLD -t ctx $CTX" \
    "$BH rmi -f ctx; $BH rmi --prune" "$BUD --no-cache -t ctx $CTX" \
    "$DK builder prune -af; $DK rmi -f ctx" "$DKB -t ctx $CTX"
  # Unchanged rebuild: the check run is the caching build.
  bench d-same "(d) COPY 30k files, unchanged rebuild" "le:0.1" "$REBUILD_RUNS" \
    "" "$DB -t ctx $CTX" \
    "" "$BUD --layers -t ctx $CTX" \
    "" "$DKB -t ctx $CTX"
  # One file rewritten before each run (new content, same size class).
  CHANGED_FILE=$(find "$CTX/src/pkg05" -type f -name 'f*.rs' | sort | head -1)
  cp "$CHANGED_FILE" "$W/changed.orig"
  log "d: the changed file: $CHANGED_FILE"
  cat >"$W/change.py" <<'PY'
import sys, time
# New content every time: a few KB of text stamped with the time.
with open(sys.argv[1], "w") as f:
    f.write(("changed %d\n" % time.time_ns()) * 100)
PY
  CHANGE="python3 $W/change.py $CHANGED_FILE"
  bench d-one "(d) COPY 30k files, one file changed" "le:2" "$RUNS" \
    "$CHANGE" "$DB -t ctx $CTX" \
    "$CHANGE" "$BUD --layers -t ctx $CTX" \
    "$CHANGE" "$DKB -t ctx $CTX"
fi

# --------------------------------------------------------------- report ---
log "done"
{
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GB RAM, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "store fs: $(df -T "$BENCH_DIR" | awk 'NR==2{print $2}'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "distill: $("$DISTILL" --version 2>/dev/null || echo '?') $DISTILL, built $(date -r "$DISTILL" '+%F %H:%M') (checkout at git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty'))"
  ((HAVE_BUILDAH)) && echo "buildah: $(buildah --version); $(runc --version | head -1)"
  ((HAVE_BUILDKIT)) && echo "docker: $($DK version --format 'client {{.Client.Version}}, daemon {{.Server.Version}}' 2>/dev/null) (BuildKit via DOCKER_BUILDKIT=1)"
  echo "hyperfine: $(hyperfine --version)"
  [[ -f $W/usr-size ]] && echo "(c) /usr of the python3 base: $(cat "$W/usr-size")"
  [[ -f $W/ctx-size ]] && echo "(d) context: $(cat "$W/ctx-size")"
  echo
} >"$W/machine"
cat "$W/machine"
python3 - "$RESULTS" "$RUNS" "$REBUILD_RUNS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
benches = []
by = {}
for r in rows:
    key = (r[0], r[1], r[2])
    if key not in by:
        by[key] = {}
        benches.append(key)
    by[key][r[3]] = r[4:]
def fmt(v):
    if v is None: return "—"
    if v[0] == "FAILED": return "failed"
    t = float(v[0])
    return f"{t*1000:.0f} ms" if t < 1 else f"{t:.2f} s"
def med(v):
    return float(v[0]) if v and v[0] != "FAILED" else None
print("| benchmark | target | distill | buildah | BuildKit | distill/buildah | distill/BuildKit | met? |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for key in benches:
    id_, label, target = key
    d, b, k = (by[key].get(t) for t in ("distill", "buildah", "buildkit"))
    md, mb, mk = med(d), med(b), med(k)
    rb = f"{md/mb:.2f}" if md and mb else "—"
    rk = f"{md/mk:.2f}" if md and mk else "—"
    kind, _, val = target.partition(":")
    met, tdesc = "?", target
    if kind == "le":
        tdesc = f"distill ≤ {float(val)*1000:.0f} ms" if float(val) < 1 else f"distill ≤ {val} s"
        if md is not None: met = "yes" if md <= float(val) else "no"
    elif kind == "x":
        tdesc = f"≥ {val}× faster than buildah"
        if md and mb: met = "yes" if mb / md >= float(val) else f"no ({mb/md:.2f}×)"
    elif kind == "half":
        tdesc = "≤ ½ BuildKit"
        if md and mk: met = "yes" if md <= mk / 2 else "no"
    print(f"| {label} | {tdesc} | {fmt(d)} | {fmt(b)} | {fmt(k)} | {rb} | {rk} | {met} |")
print()
print(f"Median wall time (hyperfine) of {sys.argv[2]} runs, {sys.argv[3]} for unchanged rebuilds; ratio < 1: distill is faster.")
PY
