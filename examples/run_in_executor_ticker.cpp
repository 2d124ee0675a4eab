// Shows run_in_executor keeping the event loop responsive: a blocking call runs on a thread pool while a
// coroutine on the single-threaded loop keeps ticking every 100 ms (Python: loop.run_in_executor).
#include <cohort/cohort.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

constexpr auto tick_period = 100ms;

// Plain fields are enough: every coroutine here runs on the one thread of cohort::run's loop.
struct TickStats {
  int ticks = 0;
  std::chrono::milliseconds max_lag{0};
};

// Lag is how much later than asked the loop woke the ticker: near 0 while nothing blocks the loop.
cohort::task<void> ticker(TickStats& stats) {
  try {
    auto previous = steady::now();
    for (;;) {
      co_await cohort::sleep(tick_period);
      const auto now = steady::now();
      const auto lag = std::chrono::duration_cast<std::chrono::milliseconds>(now - previous - tick_period);
      previous = now;
      stats.max_lag = std::max(stats.max_lag, lag);
      std::cout << "tick " << ++stats.ticks << " (lag " << lag.count() << " ms)" << std::endl;
    }
  } catch (const cohort::CancelledError&) {
    std::cout << "ticker cancelled after " << stats.ticks << " ticks" << std::endl;
    throw;
  }
}

// A call that blocks its thread: a C library without an async interface, a slow computation, a file read.
int blocking_sum(int n, std::chrono::milliseconds duration) {
  std::this_thread::sleep_for(duration);
  return n * (n + 1) / 2;
}

cohort::task<void> demo(cohort::ThreadPoolExecutor& pool) {
  TickStats stats;
  auto ticking = cohort::spawn(ticker(stats));

  std::cout << "run_in_executor(pool, blocking_sum, 100, 1000ms): started" << std::endl;
  int before = stats.ticks;
  const int sum = co_await cohort::run_in_executor(pool, blocking_sum, 100, 1000ms);
  std::cout << "run_in_executor returned " << sum << std::endl;
  std::cout << "ticks while run_in_executor ran: " << stats.ticks - before
            << " (max lag " << stats.max_lag.count() << " ms)" << std::endl;

  // For contrast, the same kind of call made directly on the loop: nothing else on it runs meanwhile, and
  // the next tick comes about 500 ms late.
  std::cout << "blocking_sum(100, 500ms) called on the loop itself: started" << std::endl;
  before = stats.ticks;
  const int direct = blocking_sum(100, 500ms);
  std::cout << "direct call returned " << direct << std::endl;
  std::cout << "ticks while the loop was blocked: " << stats.ticks - before << std::endl;
  co_await cohort::sleep(250ms);  // lets the ticker report the lag it suffered

  ticking.cancel();
  try {
    co_await ticking.async_get();
  } catch (const cohort::CancelledError&) {
    std::cout << "ticker task ended: cancelled=" << std::boolalpha << ticking.cancelled() << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  // Outlives the loop, so no coroutine can still be waiting on it when it shuts down.
  cohort::ThreadPoolExecutor pool(2);
  cohort::run(demo(pool));
}
