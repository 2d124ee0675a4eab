// Benchmark 2: ThreadPoolExecutor(2) throughput, the workload of anchors/06_tpe_submit.py: submit
// 100,000 tiny tasks, then get() each in submission order. Peer: a raw Asio thread_pool(2) with one
// std::promise per task, the least machinery that still hands a result back to the submitter.
// Also the sequential submit -> get() round trip of both, which isolates the cost of waking a worker
// and being woken by it from what the coroutine path adds on top (see run_in_executor_bench.cpp).
#include <benchmark/benchmark.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <future>
#include <stdexcept>
#include <vector>

#include <cohort/cohort.hpp>

#include "bench_common.hpp"

namespace {

namespace asio = boost::asio;
using cohort_bench::square;

constexpr long batch_tasks = 100'000;
constexpr int workers = 2;

long submit_batch_cohort(cohort::ThreadPoolExecutor& tp, long n) {
  std::vector<cohort::Future<long>> futures;
  futures.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) futures.push_back(tp.submit(square, i));
  long sum = 0;
  for (auto& f : futures) sum += f.get();
  return sum;
}

long submit_batch_asio(asio::thread_pool& pool, long n) {
  std::vector<std::future<long>> futures;
  futures.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    std::promise<long> p;
    futures.push_back(p.get_future());
    asio::post(pool, [p = std::move(p), i]() mutable { p.set_value(square(i)); });
  }
  long sum = 0;
  for (auto& f : futures) sum += f.get();
  return sum;
}

template <class Pool, class Batch>
void run_batches(benchmark::State& state, Pool& pool, Batch batch) {
  const long expected = cohort_bench::expected_sum_of_squares(batch_tasks);
  // The anchor measures an already started, warmed-up pool: threads exist and the allocator is primed.
  if (batch(pool, batch_tasks) != expected) throw std::logic_error("wrong sum in warm-up");
  for (auto _ : state) {
    if (batch(pool, batch_tasks) != expected) {
      state.SkipWithError("wrong sum of squares");
      break;
    }
  }
  state.counters["tasks_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch_tasks), benchmark::Counter::kIsRate);
}

void tpe_submit_cohort(benchmark::State& state) {
  cohort::ThreadPoolExecutor tp(workers);
  run_batches(state, tp, submit_batch_cohort);
}

void tpe_submit_asio(benchmark::State& state) {
  asio::thread_pool pool(workers);
  run_batches(state, pool, submit_batch_asio);
  pool.join();
}

// Several timed repetitions and their median, like the anchor (median of 5 after a warm-up); real time,
// because the work happens on the pool's threads, not on the one that Google Benchmark's CPU clock sees.
BENCHMARK(tpe_submit_cohort)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3)->Repetitions(5);
BENCHMARK(tpe_submit_asio)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3)->Repetitions(5);

void submit_get_round_trip_cohort(benchmark::State& state) {
  cohort::ThreadPoolExecutor tp(static_cast<std::size_t>(state.range(0)));
  tp.submit(square, 0L).get();
  std::vector<double> samples;
  samples.reserve(1 << 20);
  long i = 0;
  for (auto _ : state) {
    const auto t0 = cohort_bench::Clock::now();
    benchmark::DoNotOptimize(tp.submit(square, i++).get());
    samples.push_back(cohort_bench::micros(cohort_bench::Clock::now() - t0));
  }
  cohort_bench::report_latency(state, samples);
}

void submit_get_round_trip_asio(benchmark::State& state) {
  asio::thread_pool pool(static_cast<std::size_t>(state.range(0)));
  std::vector<double> samples;
  samples.reserve(1 << 20);
  long i = 0;
  for (auto _ : state) {
    const auto t0 = cohort_bench::Clock::now();
    std::promise<long> p;
    auto f = p.get_future();
    asio::post(pool, [p = std::move(p), x = i++]() mutable { p.set_value(square(x)); });
    benchmark::DoNotOptimize(f.get());
    samples.push_back(cohort_bench::micros(cohort_bench::Clock::now() - t0));
  }
  cohort_bench::report_latency(state, samples);
  pool.join();
}

BENCHMARK(submit_get_round_trip_cohort)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()->Iterations(20'000)->Repetitions(3);
BENCHMARK(submit_get_round_trip_asio)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()->Iterations(20'000)->Repetitions(3);

}  // namespace
