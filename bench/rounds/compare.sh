#!/usr/bin/env bash
# Rounds a minute and the round's own sampling rate of two `selfplay` binaries, alternating from
# one warm start on one machine (bench/NOTES.md, "Finished sequences leave the batch"):
#   bench/rounds/compare.sh BEFORE_BIN AFTER_BIN WARM_RUN_DIR [CONFIG]
# WARM_RUN_DIR is a run directory holding `warmstart/` (`selfplay run --rounds 0`); CONFIG, when
# given, is the run configuration it was made with. ROUNDS (default 30) and REPEATS (default 2)
# can be set in the environment; OUT_DIR (default a temporary directory) keeps the runs.
set -euo pipefail
before="$1"; after="$2"; warm="$3"; config="${4:-}"
rounds="${ROUNDS:-30}"; repeats="${REPEATS:-2}"
out="${OUT_DIR:-$(mktemp -d)}"
[ -d "$warm/warmstart" ] || { echo "$warm has no warmstart/: make one with selfplay run --rounds 0" >&2; exit 2; }
for rep in $(seq 1 "$repeats"); do
  for which in before after; do
    bin="$before"; [ "$which" = after ] && bin="$after"
    dir="$out/$which-$rep"
    rm -rf "$dir"; mkdir -p "$dir"; cp -r "$warm/warmstart" "$dir/warmstart"
    "$bin" run ${config:+--config "$config"} --run-dir "$dir" --rounds "$rounds" --seed 1 >/dev/null 2>"$dir/log"
  done
done
python3 - "$out" "$repeats" <<'PY'
import json, statistics, sys
out, repeats = sys.argv[1], int(sys.argv[2])
print("| binary | run | round's sampling, tokens/s (median) | solve phase, s/round | update phase, s/round "
      "| rounds/min | attempt length |")
print("|---|---|---|---|---|---|---|")
for rep in range(1, repeats + 1):
    for which in ("before", "after"):
        m = [json.loads(l) for l in open(f"{out}/{which}-{rep}/metrics.jsonl")]
        total = sum(x["timings"]["total"] for x in m)
        print(f"| {which} | {rep} | {statistics.median(x['attempt_tokens_per_s'] for x in m):,.0f} "
              f"| {statistics.mean(x['timings']['solve'] for x in m):.2f} "
              f"| {statistics.mean(x['timings']['update'] for x in m):.2f} | {60 * len(m) / total:.1f} "
              f"| {statistics.mean(x['solver']['completion_length'] for x in m if x.get('solver')):.1f} |")
PY
