#include "cohort/as_completed.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "cohort/runtime.hpp"
#include "cohort/thread_pool_executor.hpp"

namespace {

using namespace std::chrono_literals;

int sleepy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

TEST(AsCompleted, YieldsFuturesInCompletionOrder) {
  cohort::ThreadPoolExecutor pool(3);
  std::vector<cohort::Future<int>> futures{pool.submit(sleepy, 300), pool.submit(sleepy, 10), pool.submit(sleepy, 150)};
  std::vector<int> order;
  for (auto& done : cohort::as_completed(futures, 10s)) order.push_back(done.get());
  EXPECT_EQ(order, (std::vector<int>{10, 150, 300}));
}

TEST(AsCompleted, AlreadyDoneFuturesComeFirstAndDuplicatesOnce) {
  cohort::Promise<int> done;
  done.set_value(1);
  cohort::Promise<int> later;
  std::vector<cohort::Future<int>> futures{later.get_future(), done.get_future(), done.get_future()};
  std::thread setter([&] {
    std::this_thread::sleep_for(20ms);
    later.set_value(2);
  });
  std::vector<int> order;
  for (auto& f : cohort::as_completed(futures)) order.push_back(f.get());
  setter.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(AsCompleted, TimeoutThrowsNamingTheUnfinished) {
  cohort::Promise<int> never;
  cohort::Promise<int> done;
  done.set_value(1);
  std::vector<cohort::Future<int>> futures{never.get_future(), done.get_future()};
  int yielded = 0;
  try {
    for (auto& f : cohort::as_completed(futures, 50ms)) {
      (void)f;
      ++yielded;
    }
    FAIL();
  } catch (const cohort::TimeoutError& e) {
    EXPECT_STREQ(e.what(), "as_completed: 1 future(s) unfinished after 50 ms");
  }
  EXPECT_EQ(yielded, 1);
}

TEST(AsCompleted, CoroutineStyleAwaitsEachWithoutBlockingTheLoop) {
  cohort::ThreadPoolExecutor pool(2);
  std::vector<cohort::Future<int>> futures{pool.submit(sleepy, 200), pool.submit(sleepy, 20)};
  const auto order = cohort::run([](std::vector<cohort::Future<int>> fs) -> cohort::task<std::vector<int>> {
    std::vector<int> seen;
    auto completed = cohort::as_completed(fs, 10s);
    while (auto f = co_await completed.async_next()) seen.push_back(f->get());
    co_return seen;
  }(futures));
  EXPECT_EQ(order, (std::vector<int>{20, 200}));
}

TEST(AsCompleted, CoroutineStyleTimesOut) {
  cohort::Promise<int> never;
  std::vector<cohort::Future<int>> futures{never.get_future()};
  EXPECT_THROW(cohort::run([](std::vector<cohort::Future<int>> fs) -> cohort::task<void> {
                 auto completed = cohort::as_completed(fs, 30ms);
                 co_await completed.async_next();
               }(futures)),
               cohort::TimeoutError);
}

TEST(AsCompleted, EmptyInputYieldsNothing) {
  std::vector<cohort::Future<int>> none;
  for (auto& f : cohort::as_completed(none)) {
    (void)f;
    FAIL();
  }
}

}  // namespace
