#include "cohort/gather.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

template <class T>
cohort::task<T> after(std::chrono::milliseconds delay, T value) {
  co_await cohort::sleep(delay);
  co_return value;
}

cohort::task<void> nothing() { co_return; }

cohort::task<int> fail_after(std::chrono::milliseconds delay) {
  co_await cohort::sleep(delay);
  throw std::invalid_argument("bad input");
}

/// Sleeps long, recording whether it was cancelled.
cohort::task<int> long_sleeper(bool& cancelled) {
  try {
    co_await cohort::sleep(30s);
  } catch (const cohort::CancelledError&) {
    cancelled = true;
    throw;
  }
  co_return 0;
}

TEST(Gather, ResultsComeInArgumentOrderWhateverTheFinishingOrder) {
  const auto [a, b, c] = cohort::run([]() -> cohort::task<std::tuple<int, std::string, std::monostate>> {
    co_return co_await cohort::gather(after(60ms, 1), after(10ms, std::string("two")), nothing());
  }());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, "two");
  (void)c;
}

TEST(Gather, RunsConcurrently) {
  const auto start = Clock::now();
  cohort::run([]() -> cohort::task<void> { co_await cohort::gather(after(200ms, 1), after(200ms, 2), after(200ms, 3)); }());
  EXPECT_LT(Clock::now() - start, 550ms);
}

TEST(Gather, VectorFormReturnsAVectorInOrder) {
  const auto results = cohort::run([]() -> cohort::task<std::vector<int>> {
    std::vector<cohort::task<int>> tasks;
    for (int i = 0; i < 20; ++i) tasks.push_back(after(std::chrono::milliseconds(20 - i), i));
    co_return co_await cohort::gather(std::move(tasks));
  }());
  ASSERT_EQ(results.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(results[i], i);
}

TEST(Gather, EmptyVectorGivesEmptyResult) {
  const auto results = cohort::run([]() -> cohort::task<std::vector<int>> {
    co_return co_await cohort::gather(std::vector<cohort::task<int>>{});
  }());
  EXPECT_TRUE(results.empty());
}

TEST(Gather, FirstErrorPropagatesAtOnceAndSiblingsAreCancelled) {
  bool sibling_cancelled = false;
  const auto start = Clock::now();
  cohort::run([](bool& cancelled) -> cohort::task<void> {
    EXPECT_THROW(co_await cohort::gather(long_sleeper(cancelled), fail_after(20ms)), std::invalid_argument);
    co_await cohort::sleep(20ms);  // the cancellation reaches the sibling on its strand
  }(sibling_cancelled));
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_TRUE(sibling_cancelled);
}

TEST(Gather, FirstErrorInTheVectorFormCancelsTheRest) {
  bool cancelled[3] = {false, false, false};
  cohort::run([](bool* flags) -> cohort::task<void> {
    std::vector<cohort::task<int>> tasks;
    for (int i = 0; i < 3; ++i) tasks.push_back(long_sleeper(flags[i]));
    tasks.push_back(fail_after(10ms));
    EXPECT_THROW(co_await cohort::gather(std::move(tasks)), std::invalid_argument);
    co_await cohort::sleep(20ms);
  }(cancelled));
  for (bool flag : cancelled) EXPECT_TRUE(flag);
}

TEST(Gather, CancellingTheGatherCancelsItsChildren) {
  bool child_cancelled = false;
  cohort::run([](bool& cancelled) -> cohort::task<void> {
    auto outer = cohort::spawn([](bool& c) -> cohort::task<void> {
      co_await cohort::gather(long_sleeper(c), after(30s, 1));
    }(cancelled));
    co_await cohort::sleep(20ms);
    outer.cancel();
    EXPECT_THROW(co_await outer.async_get(), cohort::CancelledError);
    co_await cohort::sleep(20ms);
  }(child_cancelled));
  EXPECT_TRUE(child_cancelled);
}

TEST(Gather, WorksOnAMultiThreadedRuntime) {
  cohort::Runtime runtime(2);
  const auto results = runtime.run([]() -> cohort::task<std::vector<int>> {
    std::vector<cohort::task<int>> tasks;
    for (int i = 0; i < 200; ++i) tasks.push_back(after(std::chrono::milliseconds(i % 5), i));
    co_return co_await cohort::gather(std::move(tasks));
  }());
  ASSERT_EQ(results.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(results[i], i);
}

TEST(Gather, CancellingTheVectorFormCancelsEveryChild) {
  bool cancelled[4] = {false, false, false, false};
  cohort::run([](bool* flags) -> cohort::task<void> {
    auto outer = cohort::spawn([](bool* f) -> cohort::task<void> {
      std::vector<cohort::task<int>> tasks;
      for (int i = 0; i < 4; ++i) tasks.push_back(long_sleeper(f[i]));
      co_await cohort::gather(std::move(tasks));
    }(flags));
    co_await cohort::sleep(20ms);
    outer.cancel();
    EXPECT_THROW(co_await outer.async_get(), cohort::CancelledError);
    co_await cohort::sleep(20ms);
  }(cancelled));
  for (bool flag : cancelled) EXPECT_TRUE(flag);
}

TEST(Gather, VectorFormOfVoidTasks) {
  int ran = 0;
  const auto results = cohort::run([](int& count) -> cohort::task<std::vector<std::monostate>> {
    std::vector<cohort::task<void>> tasks;
    for (int i = 0; i < 5; ++i)
      tasks.push_back([](int& n) -> cohort::task<void> {
        co_await cohort::sleep(1ms);
        ++n;
      }(count));
    co_return co_await cohort::gather(std::move(tasks));
  }(ran));
  EXPECT_EQ(results.size(), 5u);
  EXPECT_EQ(ran, 5);
}

TEST(Gather, VectorFormOfMoveOnlyResults) {
  const auto results = cohort::run([]() -> cohort::task<std::vector<std::unique_ptr<int>>> {
    std::vector<cohort::task<std::unique_ptr<int>>> tasks;
    for (int i = 0; i < 3; ++i)
      tasks.push_back([](int v) -> cohort::task<std::unique_ptr<int>> { co_return std::make_unique<int>(v); }(i));
    co_return co_await cohort::gather(std::move(tasks));
  }());
  ASSERT_EQ(results.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*results[i], i);
}

/// A result type without a default constructor.
struct Labelled {
  explicit Labelled(int v) : value(v) {}
  int value;
};

TEST(Gather, VectorFormOfResultsWithoutADefaultConstructor) {
  const auto results = cohort::run([]() -> cohort::task<std::vector<Labelled>> {
    std::vector<cohort::task<Labelled>> tasks;
    for (int i = 0; i < 3; ++i) tasks.push_back([](int v) -> cohort::task<Labelled> { co_return Labelled(v); }(i));
    tasks.push_back([]() -> cohort::task<Labelled> {
      co_await cohort::sleep(1ms);
      co_return Labelled(3);
    }());
    co_return co_await cohort::gather(std::move(tasks));
  }());
  ASSERT_EQ(results.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(results[i].value, i);
  EXPECT_THROW(cohort::run([]() -> cohort::task<void> {
                 std::vector<cohort::task<Labelled>> tasks;
                 tasks.push_back([]() -> cohort::task<Labelled> { throw std::out_of_range("no label"); }());
                 co_await cohort::gather(std::move(tasks));
               }()),
               std::out_of_range);
}

TEST(Gather, FirstErrorInTheVectorFormOnAMultiThreadedRuntime) {
  cohort::Runtime runtime(2);
  bool cancelled[8] = {};
  runtime.run([](bool* flags) -> cohort::task<void> {
    std::vector<cohort::task<int>> tasks;
    for (int i = 0; i < 8; ++i) tasks.push_back(long_sleeper(flags[i]));
    tasks.push_back(fail_after(10ms));
    EXPECT_THROW(co_await cohort::gather(std::move(tasks)), std::invalid_argument);
    co_await cohort::sleep(20ms);
  }(cancelled));
  for (bool flag : cancelled) EXPECT_TRUE(flag);
}

}  // namespace
