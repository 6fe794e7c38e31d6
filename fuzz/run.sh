#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300), one after another, from the committed
# seeds; crashes land in fuzz/artifacts/TARGET/. Prints one line per target for
# docs/RELIABILITY.md: runs, coverage, corpus, crashes.
#   fuzz/run.sh [SECONDS] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(arith program tokenizer record config scorer_answer query import)
fi
# Built once, then run directly. No sanitizer: the code under test is safe Rust, and the fuzzer
# runs several times faster.
cargo +nightly fuzz build -s none 2>&1 | tail -1
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  status=0
  "target/x86_64-unknown-linux-gnu/release/$t" "corpus/$t" "seeds/$t" \
    -artifact_prefix="artifacts/$t/" -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  corpus=$(find "corpus/$t" -type f | wc -l)
  crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
  echo "$t: ${secs} s, ${runs} runs, coverage ${cov}, corpus ${corpus}, crashes ${crashes} (exit ${status})"
done
