#!/usr/bin/env bash
# Builds the benchmarks, runs them and the Python anchors back to back, and prints the comparison table.
# Usage: bench/run.sh [extra Google Benchmark flags, e.g. --benchmark_filter=tpe]
# Results land in $COHORT_BENCH_BUILD_DIR/results/<timestamp>/ (default build dir: build/bench).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${COHORT_BENCH_BUILD_DIR:-$root/build/bench}
out=$build/results/$(date +%Y%m%dT%H%M%S)
python=${PYTHON:-python3}

"$root/scripts/install-deps.sh" --bench
# Examples on, for the HTTP service that http_bench.sh loads; only that one is built.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOHORT_BUILD_TESTS=OFF \
  -DCOHORT_BUILD_EXAMPLES=ON -DCOHORT_BUILD_BENCHMARKS=ON >/dev/null
# Two jobs at most: the machine this runs on has two cores and is shared.
cmake --build "$build" -j2 --target cohort_benchmarks cohort_process_bench cohort_pool_bench queue_throughput \
  value_lock_incr actor_bench manager_bench caf_actor_bench savina_bench caf_savina_bench \
  http_ceiling_server example_http_service_program redis_bench
mkdir -p "$out"

echo "== cohort and its C++ peers" >&2
"$build/bench/cohort_benchmarks" --benchmark_out="$out/cohort.json" --benchmark_out_format=json \
  --benchmark_display_aggregates_only=true "$@"

echo "== cohort multiprocessing drivers" >&2
{
  "$build/bench/cohort_process_bench"
  "$build/bench/queue_throughput"
  "$build/bench/value_lock_incr"
  "$build/bench/cohort_pool_bench"
  "$build/bench/actor_bench"
  "$build/bench/manager_bench"
  "$build/bench/caf_actor_bench"
  "$build/bench/savina_bench" savina_ping_pong savina_thread_ring savina_counting
  "$build/bench/caf_savina_bench" savina_ping_pong savina_thread_ring savina_counting
  # Each alone in its process, so that the resident memory is that of the idle actors.
  "$build/bench/savina_bench" idle_actors
  "$build/bench/caf_savina_bench" idle_actors
  # Alone in its process, so that its peak resident memory is its own.
  "$build/bench/cohort_pool_bench" million_futures
  "$here/http_bench.sh" cohort "$build/examples/http_service"
  "$here/http_bench.sh" ceiling "$build/bench/http_ceiling_server"
} | tee "$out/cohort_drivers.jsonl"

echo "== Python anchors" >&2
{
  "$python" "$here/anchors/tpe_submit.py"
  "$python" "$here/anchors/asyncio_run_in_executor.py" thread
  "$python" "$here/anchors/asyncio_round_trip.py"
  "$python" "$here/anchors/queue_small.py"
  "$python" "$here/anchors/queue_1mb.py"
  "$python" "$here/anchors/value_lock_incr.py"
  "$python" "$here/anchors/pipe_pingpong.py"
  for method in fork spawn forkserver; do "$python" "$here/anchors/spawn_join.py" "$method"; done
  for workload in pool_map_tiny pool_map_chunk1 ppe_submit ppe_map apply_latency; do
    "$python" "$here/anchors/$workload.py"
  done
  # Pykka is Debian's package, installed for Debian's Python.
  /usr/bin/python3 "$here/anchors/pykka_actor.py"
  "$python" "$here/anchors/manager_object_call.py"
  "$python" "$here/anchors/manager_dict_ops.py"
  "$python" "$here/anchors/manager_queue.py"
  "$here/http_bench.sh" aiohttp
} | tee "$out/python.jsonl"

echo "== Redis: cohort, redis-benchmark, Celery and Dask on one redis-server" >&2
"$here/redis_bench.sh" "$build" | tee "$out/redis.jsonl"

echo >&2
"$python" "$here/compare.py" "$out/cohort.json" "$out/python.jsonl" "$out/cohort_drivers.jsonl" "$out/redis.jsonl" |
  tee "$out/table.md"
echo "results: $out" >&2
