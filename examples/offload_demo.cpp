// cohort's main demo: an async program whose event loop stays responsive while a CPU-bound job (counting
// the primes below a limit, range by range) runs serially, on a thread pool and on a process pool. A
// ticker coroutine measures how late the loop runs it (loop lag); progress is reported as ranges complete,
// from the same loop; a table compares the three runs.
//
// In Python only the process pool would speed this job up (the GIL serializes the threads); in C++ threads
// run in parallel too, and the process pool adds isolation: a crash in a task cannot take the program down.
#include <cohort/cohort.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr long limit = 10'000'000;
constexpr long ranges = 48;
constexpr auto tick = 10ms;

bool is_prime(long n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (long d = 3; d * d <= n; d += 2)
    if (n % d == 0) return false;
  return true;
}

/// The primes in [begin, end): the task each worker runs.
long count_primes(long begin, long end) {
  long count = 0;
  for (long n = begin; n < end; ++n) count += is_prime(n);
  return count;
}

std::pair<long, long> range_bounds(long i) { return {limit * i / ranges, limit * (i + 1) / ranges}; }

/// Records how late each tick of the loop comes, per phase.
struct LoopWatch {
  Clock::duration max_lag{};
  long ticks = 0;
  void reset() {
    max_lag = {};
    ticks = 0;
  }
};

cohort::task<void> ticker(LoopWatch& watch) {
  for (;;) {
    const auto due = Clock::now() + tick;
    co_await cohort::sleep(tick);
    watch.max_lag = std::max(watch.max_lag, Clock::now() - due);
    ++watch.ticks;
  }
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Row {
  std::string mode;
  std::size_t workers;
  double seconds;
  double max_lag_ms;
  long ticks;
  long primes;
};

/// Submits every range to `executor`, reports progress as results complete, returns the total.
template <class Executor>
cohort::task<long> run_on(Executor& executor, const char* label) {
  std::vector<cohort::Future<long>> futures;
  for (long i = 0; i < ranges; ++i) {
    const auto [begin, end] = range_bounds(i);
    futures.push_back(executor.submit(count_primes, begin, end));
  }
  long total = 0;
  long done = 0;
  auto completed = cohort::as_completed(futures);
  while (auto future = co_await completed.async_next()) {
    total += future->get();
    if (++done % 12 == 0)
      std::printf("  %-13s %2ld/%ld ranges done, %ld primes so far\n", label, done, ranges, total);
  }
  co_return total;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  const auto cpus = static_cast<std::size_t>(cohort::cpu_count());
  std::printf("counting the primes below %ld in %ld ranges; the event loop ticks every %lld ms meanwhile\n", limit,
              ranges, static_cast<long long>(tick.count()));

  std::vector<Row> rows;
  cohort::run([&]() -> cohort::task<void> {
    LoopWatch watch;
    auto ticking = cohort::spawn(ticker(watch));
    const auto measure = [&](std::string mode, std::size_t workers, auto job) -> cohort::task<void> {
      watch.reset();
      const auto start = Clock::now();
      const long primes = co_await job();
      rows.push_back({std::move(mode), workers, ms(Clock::now() - start) / 1000, ms(watch.max_lag), watch.ticks, primes});
    };

    std::printf("serial, on one background thread (cohort::to_thread)\n");
    co_await measure("serial", 1, []() -> cohort::task<long> {
      const long total = co_await cohort::to_thread([] { return count_primes(0, limit); });
      std::printf("  %-13s %ld primes\n", "serial", total);
      co_return total;
    });

    cohort::ThreadPoolExecutor threads(cpus);
    std::printf("ThreadPoolExecutor(%zu)\n", cpus);
    co_await measure("thread pool", cpus, [&]() { return run_on(threads, "thread pool"); });

    cohort::ProcessPoolExecutor processes(cpus);
    processes.submit(count_primes, 0L, 10L).get();  // workers started before the clock runs
    std::printf("ProcessPoolExecutor(%zu)\n", cpus);
    co_await measure("process pool", cpus, [&]() { return run_on(processes, "process pool"); });

    ticking.cancel();
  }());

  std::printf("\n| %-12s | %7s | %8s | %8s | %13s | %5s |\n", "mode", "workers", "time", "speed-up", "max loop lag", "ticks");
  std::printf("|--------------|---------|----------|----------|---------------|-------|\n");
  for (const auto& row : rows)
    std::printf("| %-12s | %7zu | %6.2f s | %7.2fx | %10.2f ms | %5ld |\n", row.mode.c_str(), row.workers, row.seconds,
                rows.front().seconds / row.seconds, row.max_lag_ms, row.ticks);
  const bool agree = std::all_of(rows.begin(), rows.end(), [&](const Row& r) { return r.primes == rows.front().primes; });
  std::printf("\nall three counted %ld primes: %s\n", rows.front().primes, agree ? "yes" : "NO");
}
