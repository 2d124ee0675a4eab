#include "cohort/run_in_executor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <thread>

#include "cohort/gather.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"

namespace {

using namespace std::chrono_literals;

TEST(RunInExecutor, ReturnsTheResult) {
  cohort::ThreadPoolExecutor pool(2);
  EXPECT_EQ(cohort::run(cohort::run_in_executor(pool, [](int a, int b) { return a * b; }, 6, 7)), 42);
}

TEST(RunInExecutor, ExceptionKeepsItsType) {
  cohort::ThreadPoolExecutor pool(1);
  EXPECT_THROW(cohort::run(cohort::run_in_executor(pool, []() -> int { throw std::range_error("range"); })),
               std::range_error);
}

TEST(RunInExecutor, BlockingWorkDoesNotBlockTheLoop) {
  cohort::ThreadPoolExecutor pool(1);
  const int ticks = cohort::run([](cohort::ThreadPoolExecutor& p) -> cohort::task<int> {
    std::atomic<bool> finished{false};
    int count = 0;
    auto ticker = [](std::atomic<bool>& f, int& c) -> cohort::task<void> {
      while (!f.load()) {
        co_await cohort::sleep(10ms);
        ++c;
      }
    };
    auto blocking = [](cohort::ThreadPoolExecutor& p, std::atomic<bool>& f) -> cohort::task<void> {
      co_await cohort::run_in_executor(p, [] { std::this_thread::sleep_for(500ms); });
      f = true;
    };
    co_await cohort::gather(ticker(finished, count), blocking(p, finished));
    co_return count;
  }(pool));
  EXPECT_GE(ticks, 10);  // 50 possible; a blocked loop would give 0 or 1
}

TEST(RunInExecutor, ToThreadUsesTheDefaultPool) {
  const auto caller = std::this_thread::get_id();
  const auto worker = cohort::run(cohort::to_thread([] { return std::this_thread::get_id(); }));
  EXPECT_NE(worker, caller);
  EXPECT_EQ(cohort::run(cohort::to_thread([](int x) { return x + 1; }, 1)), 2);
}

TEST(RunInExecutor, CancellingTheAwaiterCancelsWorkThatHasNotStarted) {
  cohort::ThreadPoolExecutor pool(1);
  std::latch release(1);
  std::atomic<bool> second_ran{false};
  auto blocker = pool.submit([&] { release.wait(); });
  cohort::run([](cohort::ThreadPoolExecutor& p, std::atomic<bool>& ran) -> cohort::task<void> {
    auto waiting = cohort::spawn(cohort::run_in_executor(p, [&ran] { ran = true; }));
    co_await cohort::sleep(20ms);
    waiting.cancel();
    EXPECT_THROW(co_await waiting.async_get(), cohort::CancelledError);
  }(pool, second_ran));
  release.count_down();
  blocker.get();
  pool.shutdown();
  EXPECT_FALSE(second_ran.load());
}

TEST(RunInExecutor, ACallInATaskAlreadyCancelledFailsWithCancelledErrorAtOnce) {
  cohort::ThreadPoolExecutor pool(1);
  std::latch release(1);
  cohort::run([](cohort::ThreadPoolExecutor& p, std::latch& r) -> cohort::task<void> {
    auto child = cohort::spawn([](cohort::ThreadPoolExecutor& p, std::latch& r) -> cohort::task<void> {
      try {
        co_await cohort::sleep(10s);
      } catch (const cohort::CancelledError&) {
      }
      // Still cancelled: this wait must end at once, not when the blocked call finishes.
      co_await cohort::run_in_executor(p, [&r] { r.wait(); });
    }(p, r));
    co_await cohort::sleep(20ms);
    child.cancel();
    EXPECT_THROW(co_await child.async_get(), cohort::CancelledError);
  }(pool, release));
  release.count_down();
  pool.shutdown();
}

TEST(RunInExecutor, ManyConcurrentCallsOnAMultiThreadedLoop) {
  cohort::ThreadPoolExecutor pool(2);
  cohort::Runtime runtime(2);
  const auto results = runtime.run([](cohort::ThreadPoolExecutor& p) -> cohort::task<std::vector<long>> {
    std::vector<cohort::task<long>> calls;
    for (long i = 0; i < 5000; ++i) calls.push_back(cohort::run_in_executor(p, [](long v) { return v * v; }, i));
    co_return co_await cohort::gather(std::move(calls));
  }(pool));
  ASSERT_EQ(results.size(), 5000u);
  for (long i = 0; i < 5000; ++i) ASSERT_EQ(results[i], i * i);
}

// One call at a time, each awaited before the next: the pattern where the worker goes idle and the loop
// goes to sleep between calls, over and over. A lost wake-up on either side hangs it.
TEST(RunInExecutor, AwaitedCallsOneAfterAnotherNeverStall) {
  for (const std::size_t workers : {1, 2}) {
    cohort::ThreadPoolExecutor pool(workers);
    const long sum = cohort::run([&pool]() -> cohort::task<long> {
      long total = 0;
      for (long i = 0; i < 100'000; ++i) total += co_await cohort::run_in_executor(pool, [](long x) { return x % 7; }, i);
      co_return total;
    }());
    long expected = 0;
    for (long i = 0; i < 100'000; ++i) expected += i % 7;
    EXPECT_EQ(sum, expected);
  }
}

}  // namespace
