#!/usr/bin/env bash
# The interestingness experiment (bench/experiments/interestingness/README.md):
#   bench/experiments/interestingness/run.sh [OUT_DIR]
# ROUNDS (default 100), SEEDS (default "1 2 3"), WEIGHT (default 0.5), MODE (additive or frontier:
# reward.interestingness_mode), RATINGS (default 1500),
# SELFPLAY (default: a release build) can be set in the environment.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="$(mkdir -p "${1:-$root/runs/exp-interestingness}" && cd "${1:-$root/runs/exp-interestingness}" && pwd)"
rounds="${ROUNDS:-100}"
seeds="${SEEDS:-1 2 3}"
weight="${WEIGHT:-0.5}"
mode="${MODE:-additive}"
n_ratings="${RATINGS:-1500}"
if [ -z "${SELFPLAY:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  SELFPLAY="$root/target/release/selfplay"
fi

# 1. One warm start for every run.
base="$out/base"
if [ ! -d "$base/checkpoints/round-000000" ]; then
  "$SELFPLAY" run --config "$here/base.toml" --run-dir "$base" --rounds 0 >/dev/null 2>"$out/warmstart.log"
fi

# 2. The simulated person rates pairs of generated problems, some of them padded; the preference
#    scorer is fitted to 80% of the ratings and checked on the rest.
if [ ! -f "$base/preference.json" ]; then
  for d in 1 2 3 4 5; do "$SELFPLAY" gen --depth "$d" --count 300 --seed "$d" --text; done > "$out/pool.txt"
  awk 'NR % 3 == 0 { print $0 "+0"; next } NR % 3 == 1 { print "(" $0 ")*1"; next } { print }' "$out/pool.txt" > "$out/pool.txt.padded"
  cat "$out/pool.txt" "$out/pool.txt.padded" | "$SELFPLAY" judge --json > "$out/pool.judged.jsonl"
  python3 "$here/rater.py" ratings "$out/pool.judged.jsonl" "$n_ratings" 7 > "$out/ratings.jsonl"
  "$SELFPLAY" rate --run-dir "$base" import "$out/ratings.jsonl"
  "$SELFPLAY" rate --run-dir "$base" train
fi
"$SELFPLAY" rate --run-dir "$base" eval --json > "$out/preference-eval.json"

# 3. Each seed: the same start, interestingness weight on and off; the scorer scores both arms.
for seed in $seeds; do
  for arm in on off; do
    dir="$out/$arm-$seed"
    w="$weight"; [ "$arm" = off ] && w=0.0
    if [ ! -f "$dir/late.jsonl" ]; then
      # The warm start and the fitted scorer are shared; the self-play state starts from the seed.
      rm -rf "$dir"; cp -r "$base" "$dir"; rm -rf "$dir/checkpoints" "$dir/metrics.jsonl"
      { cat "$here/base.toml"
        printf '\n[reward]\ninterestingness_weight = %s\ninterestingness_mode = "%s"\n\n[[scorers]]\nkind = "preference"\n' "$w" "$mode"
      } > "$dir/experiment.toml"
      "$SELFPLAY" run --config "$dir/experiment.toml" --run-dir "$dir" --rounds "$rounds" --seed "$seed" >/dev/null 2>"$dir/run.log"
      "$SELFPLAY" archive --run-dir "$dir" export --format jsonl --rounds "$((rounds / 2 + 1)).." > "$dir/late.jsonl"
    fi
  done
done

# 4. The comparison.
cd "$here" && python3 analyze.py "$out" "$rounds" $seeds > "$out/results.json"
cat "$out/results.json"
