#include "cohort/runtime.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <latch>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "cohort/future.hpp"
#include "cohort/gather.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"

namespace {

using namespace std::chrono_literals;

cohort::task<int> answer() { co_return 42; }
cohort::task<int> thrower() {
  co_await cohort::sleep(1ms);
  throw std::length_error("too long");
}

TEST(Runtime, RunReturnsTheMainResult) { EXPECT_EQ(cohort::run(answer()), 42); }

TEST(Runtime, RunRethrowsTheMainExceptionWithItsType) { EXPECT_THROW(cohort::run(thrower()), std::length_error); }

TEST(Runtime, ARuntimeRunsSeveralMainsInTurn) {
  cohort::Runtime runtime;
  EXPECT_EQ(runtime.run(answer()), 42);
  EXPECT_EQ(runtime.run(answer()), 42);
}

TEST(Runtime, ALoopThatSleepsWhenIdleWakesForTimersAndOtherThreadsWork) {
  cohort::Runtime runtime(1, cohort::IdleLoop::sleep);
  const auto start = std::chrono::steady_clock::now();
  runtime.run(cohort::sleep(5ms));  // a timer wakes it
  EXPECT_GE(std::chrono::steady_clock::now() - start, 5ms);
  // Work completed by another thread wakes it too.
  auto state = std::make_shared<cohort::detail::FutureState<int>>();
  std::thread completer([state] {
    std::this_thread::sleep_for(20ms);
    state->try_set_value(7);
  });
  EXPECT_EQ(runtime.run([](cohort::Future<int> later) -> cohort::task<int> { co_return co_await later.async_get(); }(
                cohort::Future<int>(state))),
            7);
  completer.join();
}

TEST(Runtime, RunningTwiceAtOnceIsAnError) {
  cohort::Runtime runtime;
  runtime.run([](cohort::Runtime& rt) -> cohort::task<void> {
    EXPECT_THROW(rt.run(answer()), std::logic_error);
    co_return;
  }(runtime));
}

TEST(Runtime, SeveralThreadsRunTasksInParallel) {
  cohort::Runtime runtime(2);
  EXPECT_EQ(runtime.threads(), 2u);
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::atomic<int> arrived{0};
  auto meet = [&]() -> cohort::task<void> {
    {
      std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
    }
    ++arrived;
    // Both tasks hold their thread until the other arrives: only possible with two loop threads.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    co_return;
  };
  runtime.run([](auto meet) -> cohort::task<void> { co_await cohort::gather(meet(), meet()); }(meet));
  EXPECT_EQ(arrived.load(), 2);
  EXPECT_EQ(threads.size(), 2u);
}

TEST(Runtime, StopFromAnotherThreadCancelsMain) {
  cohort::Runtime runtime;
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    runtime.stop();
  });
  EXPECT_THROW(runtime.run(cohort::sleep(30s)), cohort::CancelledError);
  stopper.join();
}

TEST(Runtime, SigintCancelsMainAndTheProcessSurvives) {
  cohort::Runtime runtime;
  std::thread signaller([] {
    std::this_thread::sleep_for(100ms);
    ::kill(::getpid(), SIGINT);
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(runtime.run(cohort::sleep(30s)), cohort::CancelledError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  signaller.join();
}

TEST(Runtime, SigtermCancelsMain) {
  std::thread signaller([] {
    std::this_thread::sleep_for(100ms);
    ::kill(::getpid(), SIGTERM);
  });
  EXPECT_THROW(cohort::run(cohort::sleep(30s)), cohort::CancelledError);
  signaller.join();
}

TEST(Runtime, ASecondStopEndsAMainThatIgnoresCancellation) {
  cohort::Runtime runtime;
  std::atomic<bool> release{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    runtime.stop();
    runtime.stop();
    std::this_thread::sleep_for(50ms);
    release = true;
  });
  // A main that blocks its thread cannot see cancellation; the second stop() ends run() anyway.
  EXPECT_THROW(runtime.run([](std::atomic<bool>& r) -> cohort::task<void> {
                 while (!r.load()) std::this_thread::sleep_for(1ms);
                 co_await cohort::sleep(30s);
               }(release)),
               cohort::CancelledError);
  stopper.join();
}

TEST(Runtime, SpawnOutsideAnEventLoopIsAClearError) {
  try {
    cohort::spawn(answer());
    FAIL();
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("no event loop"), std::string::npos);
  }
}

TEST(Runtime, DestroyingTheRuntimeEndsPendingTasksAndLateResultsAreHarmless) {
  cohort::Promise<int> never_yet;
  cohort::Future<int> pending_task;
  {
    cohort::Runtime runtime;
    pending_task = runtime.run([](cohort::Future<int> f) -> cohort::task<cohort::Future<int>> {
      co_return cohort::spawn(f.async_get()).future();
    }(never_yet.get_future()));
    EXPECT_FALSE(pending_task.done());
  }
  EXPECT_TRUE(pending_task.cancelled());
  never_yet.set_value(1);  // the waiter's loop is gone: nothing may be touched
  EXPECT_EQ(never_yet.get_future().get(), 1);
}

TEST(Runtime, PendingTasksResumeOnTheNextRun) {
  cohort::Runtime runtime;
  cohort::Promise<int> later;
  auto task_future = runtime.run([](cohort::Future<int> f) -> cohort::task<cohort::Future<int>> {
    co_return cohort::spawn(f.async_get()).future();
  }(later.get_future()));
  later.set_value(8);
  const int value = runtime.run([](cohort::Future<int> f) -> cohort::task<int> { co_return co_await f.async_get(); }(task_future));
  EXPECT_EQ(value, 8);
}

}  // namespace
