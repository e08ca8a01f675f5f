#!/usr/bin/env bash
# Dockerfile frontend speed: parse + plan of a generated 5,000-line Dockerfile,
# one core. Target (issue 2): >= 50 MB/s, under 2 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
taskset -c 0 cargo bench -q -p distill-dockerfile --bench parse_plan 2>/dev/null || cargo bench -q -p distill-dockerfile --bench parse_plan
