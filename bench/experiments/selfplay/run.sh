#!/usr/bin/env bash
# The self-play experiments of bench/experiments/selfplay/README.md:
#   bench/experiments/selfplay/run.sh [OUT_DIR]
# MINUTES (default 20: self-play minutes per run, one CPU core each), SEEDS (default "1 2 3"),
# ABLATION_SEEDS (default "1"), ABLATIONS (default "no-padding no-repetition no-penalties", set
# empty for none; every arm is one case of arm_config below, with what it is beside it: the
# ablations, the controls generator and frozen-proposer, and the mechanisms), JOBS
# (runs at once, default 2), BENCH_PROBLEMS (per depth, default 1000), BENCH_DEPTHS (default
# "1 2 3 4"), SELFPLAY (default: a release
# build), WARM_START_CONFIG (a run configuration for the shared warm start and every run, under
# each arm's keys, e.g. one that sets [warm_start] proposer_wide_literals and the
# controller.literals that go with it; default: the embedded defaults), DOMAIN (the domain of the
# benchmark and the generator's problems, default arith; program with configs/program.toml as
# WARM_START_CONFIG) can be set in the environment.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="$(mkdir -p "${1:-$root/runs/exp-selfplay}" && cd "${1:-$root/runs/exp-selfplay}" && pwd)"
minutes="${MINUTES:-20}"
seeds="${SEEDS:-1 2 3}"
ablation_seeds="${ABLATION_SEEDS:-1}"
ablations="${ABLATIONS-no-padding no-repetition no-penalties}"
# The arms (run in step 3): the defaults; padding and length-residual terms off; repetition penalties off;
# all three off (a padded problem is often a canonical copy, so the repetition penalty alone
# also stops padding: the padding terms are measured where nothing else does); the target term
# off; the frontier reward alone (every charge off: padding, length, repetition, target).
no_padding='[reward.padding]\nexponent = 0.0\nhard_floor = 1.0\ncost = 0.0\n\n[reward.length]\nweight = 0.0\n'
no_repetition='[reward.repetition]\nbatch = 0.0\narchive = 0.0\ncost = 0.0\ncrowding = 0.0\n'
# The crowding term alone off: copies still cost what they cost.
no_crowding='[reward.repetition]\ncrowding = 0.0\n'
# The target term off, and the invalid reward it lowered back where it was (-1): the defaults
# before the term existed.
no_target='[reward]\ninvalid = -1.0\n\n[reward.target]\ncost = 0.0\n'
no_target_cost='[reward.target]\ncost = 0.0\n'
# Not an ablation: the defaults plus an anchor on the rehearsal problems solved every time.
anchor='[round]\nanchor = 0.5\n'
# Not an ablation: 32 rehearsal problems of the warm start's kind a round, not 8, for what the
# proposer stops asking (the program domain's abductions) to be exercised still.
wide_rehearsal='[round]\nrehearsal = 32\n'
# Not an ablation: every target one operation, so that padding is the only way to make a problem
# harder (literals stay within the warm start's bound); and the same with every charge off.
one_op='[controller]\nstart = 1.0\nmax_depth = 1\n'
# Not an ablation: the solver's self-play learning rate 3 and 10 times the default's 1e-4, held
# constant, for a solver whose sampled answers solve far more than its greedy ones.
solver_lr3x='[solver_optim]\nlr = 3e-4\nmin_lr = 3e-4\n'
solver_lr10x='[solver_optim]\nlr = 1e-3\nmin_lr = 1e-3\n'
# Not an ablation: the solver's policy gradient on its right attempts alone (failures not pushed
# down: rejection-sampling fine-tuning on verified answers); and with Dr. GRPO's advantages (only
# centred, token sums over one constant), without GRPO's division by each group's standard
# deviation and its per-sequence token mean.
solver_positive='[solver_ppo]\nnegative_weight = 0.0\n'
solver_dr_grpo='[solver_ppo]\nestimator = "dr_grpo"\n'
# Not an ablation: the proposer's rewards compared with the mean of the proposals asked for the
# same difficulty target, not with the whole round's.
target_baseline='[round]\nproposer_baseline = "target"\n'
# The controls: the domain's generator writes at the controller's targets (no proposer), or the
# warm-start proposer writes and never learns; everything else of the round as in the defaults.
generator='[round]\narm = "generator"\n'
frozen_proposer='[round]\narm = "frozen_proposer"\n'
# A mechanism: the frontier term paid times the problem's depth (reward.depth_exponent = 1), so
# that a four-operation problem in the band earns twice what a two-operation one does.
depth_reward='[reward]\ndepth_exponent = 1.0\n'
# A mechanism: Absolute Zero's learnability frontier 1 - p (0 < p < 1) instead of R-Zero's
# 1 - 2|p - 0.5|: among the problems a target allows, the harder the better, where R-Zero's term
# pays a proposer for steering p toward one half by flattening its problems.
absolute_zero='[reward]\nfrontier = "absolute_zero"\n'
# A mechanism: the proposer held five times as hard to its warm start (KL 0.25, not 0.05), whose
# problems nest as the generator's do, so that it finds the band by its literals, not by writing
# flat chains.
proposer_kl='[proposer_ppo]\nkl_coef = 0.25\n'
# depth-kl: the depth reward with the proposer held so (the depth it asks, the nesting it had).
# A mechanism: the proposer also self-trained on its own fresh, on-target in-band proposals.
self_train='[round]\nself_training = 1.0\n'
# A mechanism: chains one operation a step, composed from the solver's own verified steps, for
# the problems no attempt solved (lab/src/round/compose.rs).
compose='[round]\ncompose = 1.0\n'
# The same for 16 problems a round, not 4; and with them, each chain trained with advantage 3.
compose_wide='[round]\ncompose = 1.0\ncompose_problems = 16\n'
compose_strong='[round]\ncompose = 3.0\ncompose_problems = 16\n'
# A mechanism, for a proposer taught to mutate its references (WARM_START_CONFIG setting
# [warm_start] proposer_references = "mutated"): every prompt shows one replayed problem at the
# frontier; and its control, the generator arm mutating the same references with the domain's
# own edits.
frontier_refs='[round]\nreferences = 1\nreferences_from = "frontier"\n'
# Frontier references with the proposer self-trained on its own in-band problems.
frontier_self_train='[round]\nreferences = 1\nreferences_from = "frontier"\nself_training = 1.0\n'
# The same, each reference in the band over at least 24 attempts (three rounds' worth), not its
# last round's 8.
frontier_evidence='[round]\nreferences = 1\nreferences_from = "frontier"\nreference_evidence = 24\nself_training = 1.0\n'
# A mechanism on the solver's side: each wrong attempt paid half the share of the problem's
# operations its verified steps took away (round.step_credit), unsolved problems learnt from;
# and the generator arm with the same credit, its control.
step_credit='[round]\nstep_credit = 0.5\n'
generator_step_credit='[round]\narm = "generator"\nstep_credit = 0.5\n'
generator_frontier='[round]\narm = "generator"\nreferences = 1\nreferences_from = "frontier"\n'
# The same, each mutation tried up to 16 times for one that copies neither the archive nor the round.
generator_frontier_fresh='[round]\narm = "generator"\nreferences = 1\nreferences_from = "frontier"\nmutation_tries = 16\n'
arm_config() {
  case "$1" in
    default) : ;;
    no-padding) printf "$no_padding" ;;
    no-repetition) printf "$no_repetition" ;;
    no-penalties) printf "$no_padding\n$no_repetition" ;;
    no-crowding) printf "$no_crowding" ;;
    no-target) printf "$no_target" ;;
    frontier-only) printf "$no_padding\n$no_repetition\n$no_target_cost" ;;
    anchor) printf "$anchor" ;;
    wide-rehearsal) printf "$wide_rehearsal" ;;
    one-op) printf "$one_op" ;;
    one-op-no-penalties) printf "$no_padding\n$no_repetition\n$one_op" ;;
    target-baseline) printf "$target_baseline" ;;
    solver-lr3x) printf "$solver_lr3x" ;;
    solver-lr10x) printf "$solver_lr10x" ;;
    solver-positive) printf "$solver_positive" ;;
    solver-dr-grpo) printf "$solver_dr_grpo" ;;
    dr-grpo-wide-rehearsal) printf "$solver_dr_grpo\n$wide_rehearsal" ;;
    dr-grpo-lr3x) printf "$solver_dr_grpo\n$solver_lr3x" ;;
    generator) printf "$generator" ;;
    frozen-proposer) printf "$frozen_proposer" ;;
    depth-reward) printf "$depth_reward" ;;
    absolute-zero) printf "$absolute_zero" ;;
    proposer-kl) printf "$proposer_kl" ;;
    depth-kl) printf "$depth_reward\n$proposer_kl" ;;
    self-train) printf "$self_train" ;;
    compose) printf "$compose" ;;
    compose-wide) printf "$compose_wide" ;;
    compose-strong) printf "$compose_strong" ;;
    frontier-refs) printf "$frontier_refs" ;;
    frontier-self-train) printf "$frontier_self_train" ;;
    frontier-evidence) printf "$frontier_evidence" ;;
    generator-frontier) printf "$generator_frontier" ;;
    generator-frontier-fresh) printf "$generator_frontier_fresh" ;;
    step-credit) printf "$step_credit" ;;
    generator-step-credit) printf "$generator_step_credit" ;;
    *) return 1 ;;
  esac
}
# Every arm is named once, in arm_config; an unknown one stops here, before any work.
arm_names() { declare -f arm_config | sed -n 's/^ *\([a-z0-9-]*\))$/\1/p' | grep -v '^default$' | paste -sd' '; }
for arm in $ablations; do
  arm_config "$arm" >/dev/null || { echo "ABLATIONS: unknown arm $arm (the arms: $(arm_names))" >&2; exit 2; }
done
jobs="${JOBS:-2}"
bench_problems="${BENCH_PROBLEMS:-1000}"
bench_depths="${BENCH_DEPTHS:-1 2 3 4}"
domain="${DOMAIN:-arith}"
if [ -z "${SELFPLAY:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  SELFPLAY="$root/target/release/selfplay"
fi
# One core per run: "20 CPU minutes" means what it says, and two runs share the machine.
export RAYON_NUM_THREADS=1

# 1. One warm start, on the embedded defaults (or WARM_START_CONFIG), shared by every run.
base="$out/base"
if [ ! -f "$base/warmstart/report.json" ]; then
  env -u RAYON_NUM_THREADS "$SELFPLAY" run ${WARM_START_CONFIG:+--config "$WARM_START_CONFIG"} \
    --run-dir "$base" --rounds 0 >/dev/null 2>"$out/warmstart.log"
fi

# 2. The benchmark every solver is measured on, before and after: BENCH_PROBLEMS fresh problems
# per depth (1,000: a change of 0.02 in sampled accuracy at depth 2 is three standard errors).
if [ ! -f "$out/benchmark.jsonl" ]; then
  for d in $bench_depths; do
    "$SELFPLAY" gen --domain "$domain" --depth "$d" --count "$bench_problems" --max-literal 20 --seed "$((1000 + d))"
  done > "$out/benchmark.jsonl"
fi
# The generator's problems of depths 1-3, judged: what a proposer that writes its warm start's
# distribution would copy of each run's archive (analyze.py, "against the generator").
if [ ! -f "$out/generator.jsonl" ]; then
  for d in 1 2 3; do
    "$SELFPLAY" gen --domain "$domain" --depth "$d" --count 2000 --max-literal 20 --seed "$((2000 + d))" --text
  done | "$SELFPLAY" judge --domain "$domain" --json > "$out/generator.jsonl.tmp" && mv "$out/generator.jsonl.tmp" "$out/generator.jsonl"
fi
if [ ! -s "$out/warmstart-eval.json" ]; then
  "$SELFPLAY" eval --checkpoint "$base/checkpoints/round-000000" --benchmark "$out/benchmark.jsonl" --json \
    --items "$out/warmstart-items.jsonl" 2>/dev/null | tail -n 1 > "$out/warmstart-eval.json.tmp" \
    && mv "$out/warmstart-eval.json.tmp" "$out/warmstart-eval.json"
fi

# 3. The runs, JOBS at once, each from a copy of the shared warm start.
one_run() { # arm seed
  local dir="$out/$1-$2"
  [ -f "$dir/eval.json" ] && return 0
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$base/warmstart" "$dir/warmstart"
  # The arm's keys merged into WARM_START_CONFIG's tables (a table may not appear twice).
  arm_config "$1" > "$dir/arm.toml"
  python3 "$here/merge_config.py" ${WARM_START_CONFIG:+"$WARM_START_CONFIG"} "$dir/arm.toml" \
    > "$dir/experiment.toml"
  "$SELFPLAY" run --config "$dir/experiment.toml" --run-dir "$dir" --minutes "$minutes" --seed "$2" \
    >"$dir/run.out" 2>"$dir/run.log"
  local last; last="$(ls -d "$dir"/checkpoints/round-* | sort | tail -n 1)"
  "$SELFPLAY" eval --checkpoint "$last" --benchmark "$out/benchmark.jsonl" --json --items "$dir/items.jsonl" \
    2>/dev/null | tail -n 1 > "$dir/eval.json.tmp" && mv "$dir/eval.json.tmp" "$dir/eval.json"
  "$SELFPLAY" archive --run-dir "$dir" export --format jsonl --valid --out "$dir/valid.jsonl"
}
runs=()
for s in $seeds; do runs+=("default $s"); done
for s in $ablation_seeds; do for arm in $ablations; do runs+=("$arm $s"); done; done
for r in "${runs[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  one_run $r &
done
wait

# 4. The tables.
python3 "$here/analyze.py" "$out" --seeds $seeds --ablation-seeds $ablation_seeds > "$out/results.json"
cat "$out/results.json"
