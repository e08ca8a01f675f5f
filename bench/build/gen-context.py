#!/usr/bin/env python3
"""Deterministic build context for bench (d): `COPY src /src` of ~30,000
files, ~350 MB, a few directories deep.

    gen-context.py DIR [--files N] [--mb M] [--seed S]

Writes DIR/Dockerfile and DIR/src/...; the same arguments always give the
same tree (byte for byte; mtimes are whatever the generation time is).
Sizes follow a log-normal-ish mix: most files are small source-like text,
a few hundred are large binaries (random bytes), so the tree looks like a
real repository with vendored assets. Text comes from a fixed pool of
pseudo-source lines (compressible), binaries from the seeded PRNG
(incompressible); roughly half the bytes are each.

Stamps DIR/.complete with the parameters; re-running with the same
parameters on a complete tree does nothing.
"""
import argparse
import os
import random
import shutil
import sys

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--files", type=int, default=30000)
ap.add_argument("--mb", type=int, default=350)
ap.add_argument("--seed", type=int, default=20240601)
args = ap.parse_args()

stamp = f"files={args.files} mb={args.mb} seed={args.seed} v=2\n"
stamp_path = os.path.join(args.dir, ".complete")
if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
    sys.exit(0)

rng = random.Random(args.seed)
if os.path.exists(args.dir):
    shutil.rmtree(args.dir)
os.makedirs(os.path.join(args.dir, "src"))

# Directory tree: 12 top-level packages, each with 4-10 modules, each with
# 0-6 submodules: a few hundred directories, 2 to 4 levels deep.
dirs = []
for a in range(12):
    top = f"pkg{a:02d}"
    dirs.append(top)
    for b in range(rng.randint(4, 10)):
        mid = f"{top}/mod{b:02d}"
        dirs.append(mid)
        for c in range(rng.randint(0, 6)):
            dirs.append(f"{mid}/sub{c:02d}")
            if rng.random() < 0.3:
                dirs.append(f"{mid}/sub{c:02d}/internal")

# Sizes: 70% small text (200 B - 8 KB), 27% medium text (8 - 32 KB),
# 3% binaries (64 KB - 4 MB, log-uniform); then scaled to the target total.
kinds, sizes = [], []
for _ in range(args.files):
    r = rng.random()
    if r < 0.70:
        kinds.append("t"); sizes.append(int(200 * 40 ** rng.random()))
    elif r < 0.97:
        kinds.append("t"); sizes.append(int(8192 * 4 ** rng.random()))
    else:
        kinds.append("b"); sizes.append(int(65536 * 64 ** rng.random()))
target = args.mb * 1000 * 1000
# Scale the binaries so that the total hits the target, keeping text as is.
text_total = sum(s for k, s in zip(kinds, sizes) if k == "t")
bin_total = sum(s for k, s in zip(kinds, sizes) if k == "b")
scale = max(0.1, (target - text_total) / max(1, bin_total))
sizes = [s if k == "t" else max(1, int(s * scale)) for k, s in zip(kinds, sizes)]

words = ("fn let mut pub struct impl return if else for while match self "
         "Some None Ok Err use mod crate super where type trait async await "
         "0 1 2 42 255 1024 buffer index count value result error config "
         "path name size len offset digest layer image stage cache").split()
lines = []
for _ in range(20000):
    indent = "    " * rng.randint(0, 3)
    lines.append(indent + " ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + ";\n")
pool = "".join(lines).encode()
exts = [".rs", ".py", ".go", ".c", ".h", ".js", ".md", ".txt", ".json", ".toml"]

total = bins = 0
for i, (k, s) in enumerate(zip(kinds, sizes)):
    d = dirs[rng.randrange(len(dirs))]
    if k == "t":
        name = f"f{i:05d}{rng.choice(exts)}"
        off = rng.randrange(len(pool) - 1)
        data = (pool[off:] + pool)[:s] if s > len(pool) - off else pool[off:off + s]
        while len(data) < s:
            data += pool[: s - len(data)]
    else:
        name = f"blob{i:05d}{rng.choice(['.bin', '.png', '.so', '.gz'])}"
        data = rng.randbytes(s)
        bins += s
    p = os.path.join(args.dir, "src", d)
    os.makedirs(p, exist_ok=True)
    with open(os.path.join(p, name), "wb") as f:
        f.write(data)
    total += s

with open(os.path.join(args.dir, "Dockerfile"), "w") as f:
    f.write("FROM debian:bookworm\nCOPY src /src\n")
with open(stamp_path, "w") as f:
    f.write(stamp)
print(f"{args.dir}: {args.files} files, {len(dirs)} directories, {total / 1e6:.0f} MB "
      f"({bins / 1e6:.0f} MB in {kinds.count('b')} random binaries)", file=sys.stderr)
