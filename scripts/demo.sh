#!/usr/bin/env bash
# The main job: builds cohort's examples (Release, out of tree) and runs each one; every example prints
# what it shows. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target cohort_examples

examples=(
  "quick_start|the README's quick start: gather of two run_in_executor calls, then submit().get()"
  "thread_pool_as_completed|ThreadPoolExecutor + as_completed: jobs are reported in the order they finish"
  "run_in_executor_ticker|run_in_executor keeps a ticking coroutine responsive while blocking work runs"
  "gather_wait_for|gather collects results in argument order; wait_for cancels what runs too long"
  "futures_basics|Future and Promise across threads: values, exceptions, callbacks, wait()"
)
for entry in "${examples[@]}"; do
  name=${entry%%|*}
  echo
  echo "=== ${name}: ${entry#*|}"
  "build/release/examples/${name}"
done
