#include "cohort/wait_for.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

cohort::task<int> after(std::chrono::milliseconds delay, int value) {
  co_await cohort::sleep(delay);
  co_return value;
}

TEST(WaitFor, ReturnsTheResultWhenInTime) {
  EXPECT_EQ(cohort::run(cohort::wait_for(after(10ms, 5), 5s)), 5);
}

TEST(WaitFor, TimesOutAndCancelsTheInnerTask) {
  bool inner_cancelled = false;
  const auto start = Clock::now();
  cohort::run([](bool& cancelled) -> cohort::task<void> {
    auto inner = [](bool& c) -> cohort::task<int> {
      try {
        co_await cohort::sleep(30s);
      } catch (const cohort::CancelledError&) {
        c = true;
        throw;
      }
      co_return 1;
    };
    try {
      co_await cohort::wait_for(inner(cancelled), 50ms);
      ADD_FAILURE() << "wait_for did not time out";
    } catch (const cohort::TimeoutError& e) {
      EXPECT_STREQ(e.what(), "wait_for: timed out after 50 ms");
    }
    co_await cohort::sleep(20ms);
  }(inner_cancelled));
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 50ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_TRUE(inner_cancelled);
}

TEST(WaitFor, InnerExceptionPropagatesWithItsType) {
  EXPECT_THROW(cohort::run(cohort::wait_for(
                   []() -> cohort::task<int> {
                     co_await cohort::sleep(1ms);
                     throw std::overflow_error("big");
                   }(),
                   5s)),
               std::overflow_error);
}

TEST(WaitFor, VoidTask) {
  cohort::run(cohort::wait_for(cohort::sleep(1ms), 1s));
  EXPECT_THROW(cohort::run(cohort::wait_for(cohort::sleep(10s), 20ms)), cohort::TimeoutError);
}

}  // namespace
