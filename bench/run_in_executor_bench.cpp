// Benchmark 3: `co_await cohort::run_in_executor` from inside cohort::run.
//  - round trip: one coroutine awaits one tiny call at a time; the median is the latency a coroutine
//    pays to hand blocking work to a pool and get its result back. Peer: a raw Asio coroutine on an
//    io_context that posts the call to an asio::thread_pool, which posts the result back.
//  - gather: the workload of anchors/13_asyncio_run_in_executor.py (thread variant): 50,000
//    run_in_executor calls on ThreadPoolExecutor(2), gathered, inside one running loop; tasks/s. Peer:
//    the same in bare Asio coroutines (co_spawn per call, the pool posting each result back).
#include <benchmark/benchmark.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <stdexcept>
#include <vector>

#include <cohort/cohort.hpp>

#include "bench_common.hpp"

namespace {

namespace asio = boost::asio;
using cohort_bench::Clock;
using cohort_bench::micros;
using cohort_bench::square;

constexpr int round_trip_iterations = 20'000;

// Times one awaited round trip per iteration; `square_of(i)` returns the awaitable of one call.
template <class SquareOf>
asio::awaitable<void> timed_round_trips(benchmark::State& state, SquareOf square_of) {
  co_await square_of(0L);  // starts the worker threads outside the timed loop
  std::vector<double> samples;
  samples.reserve(round_trip_iterations);
  long i = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    const long r = co_await square_of(i);
    samples.push_back(micros(Clock::now() - t0));
    if (r != i * i) {
      state.SkipWithError("wrong square");
      break;
    }
    ++i;
  }
  cohort_bench::report_latency(state, samples);
}

void run_in_executor_round_trip_cohort(benchmark::State& state) {
  cohort::ThreadPoolExecutor tp(static_cast<std::size_t>(state.range(0)));
  cohort::run(timed_round_trips(state, [&tp](long x) { return cohort::run_in_executor(tp, square, x); }));
}

// The bare Asio version of run_in_executor: the call goes to the pool, the completion is posted back
// to the coroutine's executor, which is kept busy meanwhile so its loop does not run out of work.
template <class Token>
auto async_square_on(asio::thread_pool& pool, long x, Token&& token) {
  return asio::async_initiate<Token, void(long)>(
      [&pool, x](auto handler) {
        auto home = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
        asio::post(pool, [handler = std::move(handler), home = std::move(home), x]() mutable {
          const long r = square(x);
          asio::post(home, [handler = std::move(handler), r]() mutable { std::move(handler)(r); });
        });
      },
      token);
}

void run_in_executor_round_trip_asio(benchmark::State& state) {
  asio::thread_pool pool(static_cast<std::size_t>(state.range(0)));
  asio::io_context loop(1);
  std::exception_ptr error;
  asio::co_spawn(loop,
                 timed_round_trips(state, [&pool](long x) { return async_square_on(pool, x, asio::use_awaitable); }),
                 [&](std::exception_ptr e) { error = e; });
  loop.run();
  pool.join();
  if (error) std::rethrow_exception(error);
}

BENCHMARK(run_in_executor_round_trip_cohort)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()
    ->Iterations(round_trip_iterations)->Repetitions(3);
BENCHMARK(run_in_executor_round_trip_asio)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()
    ->Iterations(round_trip_iterations)->Repetitions(3);

constexpr long gather_tasks = 50'000;

cohort::task<long> gather_batch(cohort::ThreadPoolExecutor& tp, long n) {
  std::vector<cohort::task<long>> work;
  work.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) work.push_back(cohort::run_in_executor(tp, square, i));
  long sum = 0;
  for (const long r : co_await cohort::gather(std::move(work))) sum += r;
  co_return sum;
}

cohort::task<void> gather_loop(benchmark::State& state, cohort::ThreadPoolExecutor& tp) {
  const long expected = cohort_bench::expected_sum_of_squares(gather_tasks);
  // As in the anchor: one untimed batch first, in the same running loop and on the same executor.
  if (co_await gather_batch(tp, gather_tasks) != expected) throw std::logic_error("wrong sum in warm-up");
  for (auto _ : state) {
    if (co_await gather_batch(tp, gather_tasks) != expected) {
      state.SkipWithError("wrong sum of squares");
      break;
    }
  }
}

void run_in_executor_gather_cohort(benchmark::State& state) {
  cohort::ThreadPoolExecutor tp(2);
  cohort::run(gather_loop(state, tp));
  state.counters["tasks_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * gather_tasks), benchmark::Counter::kIsRate);
}

BENCHMARK(run_in_executor_gather_cohort)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3)->Repetitions(5);

// The same workload in bare Asio, as a C++ programmer would write it without cohort: one co_spawn per
// call on a single-threaded io_context, each awaiting async_square_on (the pool posts the result back),
// joined by a counter. No cancellation of the others on a failure, no futures, no results vector kept
// apart: the floor that Asio's coroutines themselves set.
asio::awaitable<void> square_into(asio::thread_pool& pool, long x, long& out) {
  out = co_await async_square_on(pool, x, asio::use_awaitable);
}

void run_in_executor_gather_asio(benchmark::State& state) {
  asio::thread_pool pool(2);
  asio::io_context loop(1);
  const long expected = cohort_bench::expected_sum_of_squares(gather_tasks);
  std::vector<long> results(static_cast<std::size_t>(gather_tasks));
  const auto batch = [&] {
    long remaining = gather_tasks;
    for (long i = 0; i < gather_tasks; ++i)
      asio::co_spawn(loop, square_into(pool, i, results[static_cast<std::size_t>(i)]), [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        --remaining;
      });
    loop.restart();
    loop.run();
    long sum = 0;
    for (const long r : results) sum += r;
    return remaining == 0 && sum == expected;
  };
  if (!batch()) throw std::logic_error("wrong sum in warm-up");
  for (auto _ : state) {
    if (!batch()) {
      state.SkipWithError("wrong sum of squares");
      break;
    }
  }
  state.counters["tasks_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * gather_tasks), benchmark::Counter::kIsRate);
}

BENCHMARK(run_in_executor_gather_asio)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3)->Repetitions(5);

}  // namespace
