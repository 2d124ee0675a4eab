#include "cohort/spawn.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"

namespace {

using namespace std::chrono_literals;

cohort::task<int> after(std::chrono::milliseconds delay, int value) {
  co_await cohort::sleep(delay);
  co_return value;
}

/// Sets a flag when the coroutine frame unwinds, however it ends.
struct SetOnExit {
  bool& flag;
  ~SetOnExit() { flag = true; }
};

TEST(Spawn, TaskRunsConcurrentlyAndDeliversItsResult) {
  cohort::run([]() -> cohort::task<void> {
    auto first = cohort::spawn(after(50ms, 1));
    auto second = cohort::spawn(after(10ms, 2));
    EXPECT_FALSE(first.done());
    EXPECT_EQ(co_await second.async_get(), 2);
    EXPECT_FALSE(first.done());
    EXPECT_EQ(co_await first.async_get(), 1);
    EXPECT_TRUE(first.done());
  }());
}

TEST(Spawn, ExceptionKeepsItsType) {
  cohort::run([]() -> cohort::task<void> {
    auto failing = cohort::spawn([]() -> cohort::task<int> {
      co_await cohort::sleep(1ms);
      throw std::domain_error("outside");
    }());
    EXPECT_THROW(co_await failing.async_get(), std::domain_error);
    EXPECT_FALSE(failing.cancelled());
  }());
}

TEST(Spawn, CancelStopsTheTaskAtItsSuspensionPoint) {
  cohort::run([]() -> cohort::task<void> {
    bool unwound = false;
    auto sleeper = cohort::spawn([](bool& flag) -> cohort::task<int> {
      SetOnExit guard{flag};
      co_await cohort::sleep(30s);
      co_return 1;
    }(unwound));
    co_await cohort::sleep(10ms);
    EXPECT_TRUE(sleeper.cancel());
    EXPECT_THROW(co_await sleeper.async_get(), cohort::CancelledError);
    EXPECT_TRUE(sleeper.cancelled());
    EXPECT_TRUE(unwound);
  }());
}

TEST(Spawn, CancelBeforeTheTaskStartsMeansItNeverRuns) {
  cohort::run([]() -> cohort::task<void> {
    bool ran = false;
    auto task = cohort::spawn([](bool& flag) -> cohort::task<void> {
      flag = true;
      co_return;
    }(ran));
    task.cancel();
    EXPECT_THROW(co_await task.async_get(), cohort::CancelledError);
    EXPECT_FALSE(ran);
  }());
}

TEST(Spawn, CancelAfterCompletionReturnsFalse) {
  cohort::run([]() -> cohort::task<void> {
    auto task = cohort::spawn(after(0ms, 3));
    EXPECT_EQ(co_await task.async_get(), 3);
    EXPECT_FALSE(task.cancel());
    EXPECT_FALSE(task.cancelled());
  }());
}

TEST(Spawn, DroppingTheHandleDoesNotStopTheTask) {
  cohort::Promise<int> finished;
  cohort::run([](cohort::Promise<int>& p) -> cohort::task<void> {
    cohort::spawn([](cohort::Promise<int>& p) -> cohort::task<void> {
      co_await cohort::sleep(20ms);
      p.set_value(5);
    }(p));
    co_await cohort::sleep(100ms);
  }(finished));
  EXPECT_EQ(finished.get_future().get(0s), 5);
}

TEST(Spawn, AThreadCanWaitForATaskThroughItsFuture) {
  cohort::Runtime runtime;
  std::thread loop;
  cohort::Future<int> result;
  {
    cohort::Promise<cohort::Future<int>> handed_over;
    auto handed = handed_over.get_future();
    loop = std::thread([&] {
      runtime.run([](cohort::Promise<cohort::Future<int>>& out) -> cohort::task<void> {
        auto task = cohort::spawn(after(20ms, 6));
        out.set_value(task.future());
        co_await task.async_get();
      }(handed_over));
    });
    result = handed.get();
  }
  EXPECT_EQ(result.get(5s), 6);
  loop.join();
}

TEST(Spawn, WithAnExplicitExecutor) {
  cohort::Runtime runtime;
  auto executor = runtime.executor();
  EXPECT_EQ(runtime.run([](cohort::Executor ex) -> cohort::task<int> {
    co_return co_await cohort::spawn(ex, after(1ms, 9)).async_get();
  }(executor)),
            9);
}

}  // namespace
