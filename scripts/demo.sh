#!/usr/bin/env bash
# The main job: builds cohort's examples (Release, out of tree) and runs the flagship demo, an event loop
# that keeps ticking while a CPU-bound job runs serially, on a thread pool and on a process pool; then the
# actor server, an HTTP service of actors driven for a few seconds with cached and CPU-heavy requests;
# then a few shorter examples. Every one prints what it shows. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target cohort_examples

examples=(
  "offload_demo|a responsive event loop offloading a CPU-bound job: serial vs thread pool vs process pool"
  "actor_server_demo|an HTTP service of actors under load: cached requests and CPU-heavy ones for a process pool"
  "pool_squares|Pool(5).map(f, 1..10), scoped like Python's with-block"
  "thumbnails|ProcessPoolExecutor + as_completed: a folder of generated images turned into thumbnails"
  "quick_start|the README's quick start: gather of two run_in_executor calls, then submit().get()"
  "thread_pool_as_completed|ThreadPoolExecutor + as_completed: jobs are reported in the order they finish"
  "run_in_executor_ticker|run_in_executor keeps a ticking coroutine responsive while blocking work runs"
  "gather_wait_for|gather collects results in argument order; wait_for cancels what runs too long"
  "futures_basics|Future and Promise across threads: values, exceptions, callbacks, wait()"
  "redis_primes|scale-out on Redis: a prime count by three worker programs, one killed halfway, every range counted once"
)
for entry in "${examples[@]}"; do
  name=${entry%%|*}
  echo
  echo "=== ${name}: ${entry#*|}"
  "build/release/examples/${name}"
done
