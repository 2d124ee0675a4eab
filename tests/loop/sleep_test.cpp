#include "cohort/sleep.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "cohort/gather.hpp"
#include "cohort/runtime.hpp"
#include "cohort/spawn.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Sleep, LastsAtLeastTheDuration) {
  const auto start = Clock::now();
  cohort::run(cohort::sleep(50ms));
  EXPECT_GE(Clock::now() - start, 50ms);
}

TEST(Sleep, ConcurrentSleepsOverlap) {
  const auto start = Clock::now();
  cohort::run([]() -> cohort::task<void> {
    std::vector<cohort::task<void>> sleeps;
    for (int i = 0; i < 10; ++i) sleeps.push_back(cohort::sleep(200ms));
    co_await cohort::gather(std::move(sleeps));
  }());
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 1500ms);  // ten sleeps in a row would take 2 s
}

TEST(Sleep, CancelledSleepThrowsCancelledError) {
  cohort::run([]() -> cohort::task<void> {
    bool saw_cancelled = false;
    auto sleeper = cohort::spawn([](bool& saw) -> cohort::task<void> {
      try {
        co_await cohort::sleep(30s);
      } catch (const cohort::CancelledError&) {
        saw = true;
        throw;
      }
    }(saw_cancelled));
    co_await cohort::sleep(20ms);
    sleeper.cancel();
    EXPECT_THROW(co_await sleeper.async_get(), cohort::CancelledError);
    EXPECT_TRUE(saw_cancelled);
  }());
}

TEST(Sleep, AcceptsAnyDuration) {
  cohort::run([]() -> cohort::task<void> {
    co_await cohort::sleep(std::chrono::duration<double>(0.01));
    co_await cohort::sleep(0ns);
    co_await cohort::sleep(-5ms);
  }());
}

}  // namespace
