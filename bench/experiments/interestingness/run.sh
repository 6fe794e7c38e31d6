#!/usr/bin/env bash
# The interestingness experiment (bench/experiments/interestingness/README.md):
#   bench/experiments/interestingness/run.sh [OUT_DIR]
# Set in the environment:
#   CONFIG    the players and round (default base.toml here; players.toml: the embedded defaults)
#   ROUNDS    rounds per run (default 100); SEEDS (default "1 2 3"); JOBS runs at once (default 2)
#   WEIGHT    interestingness weight of the weighted arm (default 0.5)
#   MODE      reward.interestingness_mode of the weighted arm: additive (default here, as the
#             first measurements ran) or frontier (the lab's default)
#   RATINGS   simulated ratings the preference scorer learns from (default 1500)
#   WARMSTART a finished warm start (a run's warmstart/ directory) to use instead of training one
#             on CONFIG; it must have been trained on the same players
#   SELFPLAY  the binary (default: a release build)
# Runs: OUT_DIR/MODE-WEIGHT-SEED (weighted) and OUT_DIR/off-SEED (weight 0, shared by every
# weight and mode); results in OUT_DIR/MODE-WEIGHT.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="$(mkdir -p "${1:-$root/runs/exp-interestingness}" && cd "${1:-$root/runs/exp-interestingness}" && pwd)"
config="$(cd "$here" && realpath "${CONFIG:-base.toml}")"
rounds="${ROUNDS:-100}"
seeds="${SEEDS:-1 2 3}"
jobs="${JOBS:-2}"
weight="${WEIGHT:-0.5}"
mode="${MODE:-additive}"
n_ratings="${RATINGS:-1500}"
if [ -z "${SELFPLAY:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  SELFPLAY="$root/target/release/selfplay"
fi
# One core per run, so that JOBS runs share the machine.
export RAYON_NUM_THREADS=1

# 1. One warm start for every run.
base="$out/base"
if [ ! -d "$base/checkpoints/round-000000" ]; then
  if [ -n "${WARMSTART:-}" ]; then
    mkdir -p "$base" && rm -rf "$base/warmstart" && cp -r "$WARMSTART" "$base/warmstart"
  fi
  env -u RAYON_NUM_THREADS "$SELFPLAY" run --config "$config" --run-dir "$base" --rounds 0 \
    >/dev/null 2>"$out/warmstart.log"
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
one_run() { # dir seed weight mode
  local dir="$1"
  [ -f "$dir/late.jsonl" ] && return 0
  # The warm start and the fitted scorer are shared; the self-play state starts from the seed.
  rm -rf "$dir"; cp -r "$base" "$dir"; rm -rf "$dir/checkpoints" "$dir/metrics.jsonl" "$dir/config.toml"
  { cat "$config"
    printf '\n[reward]\ninterestingness_weight = %s\ninterestingness_mode = "%s"\n\n[[scorers]]\nkind = "preference"\n' "$3" "$4"
  } > "$dir/experiment.toml"
  "$SELFPLAY" run --config "$dir/experiment.toml" --run-dir "$dir" --rounds "$rounds" --seed "$2" >/dev/null 2>"$dir/run.log"
  "$SELFPLAY" archive --run-dir "$dir" export --format jsonl --rounds "$((rounds / 2 + 1)).." > "$dir/late.jsonl.tmp"
  mv "$dir/late.jsonl.tmp" "$dir/late.jsonl"
}
for seed in $seeds; do
  for arm in "$mode-$weight $weight $mode" "off 0.0 additive"; do
    set -- $arm
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    one_run "$out/$1-$seed" "$seed" "$2" "$3" &
  done
done
wait

# 4. The comparison.
(cd "$here" && python3 analyze.py "$out" "$mode-$weight" "$rounds" $seeds) > "$out/$mode-$weight.json"
cat "$out/$mode-$weight.json"
