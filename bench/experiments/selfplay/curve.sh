#!/usr/bin/env bash
# The learning curve of one run: every kept milestone checkpoint (rounds that are multiples of
# `milestone_every`, and round 0, the warm start) measured on a benchmark, greedy only.
#   bench/experiments/selfplay/curve.sh RUN_DIR BENCHMARK [PER_DEPTH]
# Writes RUN_DIR/curve/round-NNNNNN.json (the eval summary) and .items.jsonl (per problem), and
# skips a checkpoint already measured, so it can follow a run that is still going. PER_DEPTH
# (default 500) is how many of the benchmark's problems of each depth are used, in file order.
# SELFPLAY (default: a release build) can be set in the environment. Then:
#   python3 bench/experiments/selfplay/curve.py RUN_DIR [--markdown]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
run="${1:?usage: curve.sh RUN_DIR BENCHMARK [PER_DEPTH]}"
benchmark="${2:?usage: curve.sh RUN_DIR BENCHMARK [PER_DEPTH]}"
per_depth="${3:-500}"
[ -d "$run/checkpoints" ] || { echo "curve.sh: $run/checkpoints: no such directory (not a run directory?)" >&2; exit 2; }
[ -f "$benchmark" ] || { echo "curve.sh: $benchmark: no such file" >&2; exit 2; }
if [ -z "${SELFPLAY:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  SELFPLAY="$root/target/release/selfplay"
fi
mkdir -p "$run/curve"
# The first PER_DEPTH problems of each depth, in the benchmark's order.
python3 - "$benchmark" "$per_depth" > "$run/curve/benchmark.jsonl" <<'PY'
import json, sys
seen = {}
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        d = json.loads(line).get("depth")
    except json.JSONDecodeError as e:
        sys.exit(f"curve.sh: {sys.argv[1]}:{n}: not JSON ({e})")
    seen[d] = seen.get(d, 0) + 1
    if seen[d] <= int(sys.argv[2]):
        sys.stdout.write(line)
PY
milestone_every="$(python3 -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb')).get('milestone_every', 100))" "$run/config.toml")"
for ckpt in "$run"/checkpoints/round-*; do
  name="$(basename "$ckpt")"
  round=$((10#${name#round-}))
  [ $((round % milestone_every)) -eq 0 ] || continue
  [ -s "$run/curve/$name.json" ] && continue
  "$SELFPLAY" eval --checkpoint "$ckpt" --benchmark "$run/curve/benchmark.jsonl" --samples 0 --json \
    --items "$run/curve/$name.items.jsonl" 2>/dev/null | tail -n 1 > "$run/curve/$name.json.tmp"
  mv "$run/curve/$name.json.tmp" "$run/curve/$name.json"
  echo "curve.sh: $name measured" >&2
done
