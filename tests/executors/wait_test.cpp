#include "cohort/wait.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cohort/thread_pool_executor.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int sleepy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

TEST(Wait, AllCompletedIsTheDefault) {
  cohort::ThreadPoolExecutor pool(2);
  std::vector<cohort::Future<int>> futures{pool.submit(sleepy, 10), pool.submit(sleepy, 60)};
  auto [done, not_done] = cohort::wait(futures);
  EXPECT_EQ(done.size(), 2u);
  EXPECT_TRUE(not_done.empty());
}

TEST(Wait, FirstCompletedReturnsAsSoonAsOneIsDone) {
  cohort::ThreadPoolExecutor pool(2);
  std::vector<cohort::Future<int>> futures{pool.submit(sleepy, 1000), pool.submit(sleepy, 10)};
  const auto start = Clock::now();
  auto [done, not_done] = cohort::wait(futures, cohort::ReturnWhen::first_completed);
  EXPECT_LT(Clock::now() - start, 800ms);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].get(), 10);
  EXPECT_EQ(not_done.size(), 1u);
}

TEST(Wait, FirstExceptionReturnsOnTheFirstFailure) {
  cohort::ThreadPoolExecutor pool(2);
  std::vector<cohort::Future<int>> futures{pool.submit(sleepy, 1000), pool.submit([]() -> int {
                                             std::this_thread::sleep_for(10ms);
                                             throw std::runtime_error("fail");
                                           })};
  const auto start = Clock::now();
  auto [done, not_done] = cohort::wait(futures, 10s, cohort::ReturnWhen::first_exception);
  EXPECT_LT(Clock::now() - start, 800ms);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_THROW(done[0].get(), std::runtime_error);
}

TEST(Wait, FirstExceptionWithoutFailuresWaitsForAll) {
  cohort::ThreadPoolExecutor pool(2);
  std::vector<cohort::Future<int>> futures{pool.submit(sleepy, 10), pool.submit(sleepy, 50)};
  auto [done, not_done] = cohort::wait(futures, cohort::ReturnWhen::first_exception);
  EXPECT_EQ(done.size(), 2u);
}

TEST(Wait, TimeoutReturnsWhatIsDoneWithoutThrowing) {
  cohort::Promise<int> never;
  cohort::Promise<int> ready;
  ready.set_value(1);
  std::vector<cohort::Future<int>> futures{never.get_future(), ready.get_future(), ready.get_future()};
  const auto start = Clock::now();
  auto [done, not_done] = cohort::wait(futures, 50ms);
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(done.size(), 1u);  // duplicates count once
  EXPECT_EQ(not_done.size(), 1u);
}

TEST(Wait, CancelledFuturesAreDoneButNotExceptions) {
  cohort::Promise<int> cancelled;
  cancelled.get_future().cancel();
  cohort::Promise<int> pending;
  std::vector<cohort::Future<int>> futures{cancelled.get_future(), pending.get_future()};
  auto [done, not_done] = cohort::wait(futures, 50ms, cohort::ReturnWhen::first_exception);
  EXPECT_EQ(done.size(), 1u);
  EXPECT_EQ(not_done.size(), 1u);
}

}  // namespace
