#!/usr/bin/env bash
# Where one edit takes a problem at the solver's frontier: how often a mutation of an in-band
# problem is itself in band, by edit size (free, small) and depth change (0, +1, -1).
#
#   SOLVER=runs/x/warmstart bench/experiments/selfplay/edit_landscape.sh OUT_DIR
#
# References: PER_DEPTH generator problems at depths 2-4 (literals up to 20, as the proposer's),
# scored by SOLVER with SAMPLES attempts; those in [LOW, HIGH] are mutated COUNT times per edit
# size and depth change, and every mutation is scored with as many attempts. The raw files stay
# in OUT_DIR; edit_landscape.py prints the table.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:?usage: edit_landscape.sh OUT_DIR}
SOLVER=${SOLVER:?SOLVER names a solver checkpoint: a warmstart/ or checkpoints/round-N/}
PER_DEPTH=${PER_DEPTH:-400}; SAMPLES=${SAMPLES:-32}; COUNT=${COUNT:-4}; LOW=${LOW:-0.2}; HIGH=${HIGH:-0.8}
mkdir -p "$out"
bin=target/release/selfplay
cargo build --release -q
for d in 2 3 4; do
  "$bin" gen --depth "$d" --count "$PER_DEPTH" --max-literal 20 --seed "$d"
done > "$out/references.jsonl"
"$bin" eval --checkpoint "$SOLVER" --benchmark "$out/references.jsonl" --samples "$SAMPLES" \
  --items "$out/references-items.jsonl" >/dev/null
python3 - "$out" "$LOW" "$HIGH" <<'PY'
import json, sys
out, low, high = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
with open(f"{out}/in-band.jsonl", "w") as f:
    for line in open(f"{out}/references-items.jsonl"):
        r = json.loads(line)
        if low <= r["correct_samples"] / r["samples"] <= high:
            f.write(json.dumps({"problem": r["problem"], "depth": r["depth"]}) + "\n")
PY
: > "$out/mutations.jsonl"
for edits in free small; do
  for change in 0 1 -1; do
    for d in 2 3 4; do
      grep "\"depth\": $d}" "$out/in-band.jsonl" > "$out/refs-$d.jsonl" || continue
      "$bin" gen --mutate "$out/refs-$d.jsonl" --count "$COUNT" --edits "$edits" \
        --depth $((d + change)) --max-literal 20 --seed 7 \
        | EDITS=$edits CHANGE=$change python3 -c 'import json, os, sys
for line in sys.stdin:
    r = json.loads(line)
    r["edits"], r["change"] = os.environ["EDITS"], int(os.environ["CHANGE"])
    print(json.dumps(r))' >> "$out/mutations.jsonl"
    done
  done
done
"$bin" eval --checkpoint "$SOLVER" --benchmark "$out/mutations.jsonl" --samples "$SAMPLES" \
  --items "$out/mutations-items.jsonl" >/dev/null
python3 bench/experiments/selfplay/edit_landscape.py "$out" --band "$LOW" "$HIGH"
