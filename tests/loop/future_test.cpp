#include "cohort/future.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"
#include "done_callback_spellings.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Future, GetReturnsTheValueSetByThePromise) {
  cohort::Promise<std::string> promise;
  auto future = promise.get_future();
  EXPECT_FALSE(future.done());
  promise.set_value("done");
  EXPECT_TRUE(future.done());
  EXPECT_EQ(future.get(), "done");
  EXPECT_EQ(future.get(1ms), "done");
}

TEST(Future, GetWaitsForAValueSetOnAnotherThread) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  std::thread setter([&] {
    std::this_thread::sleep_for(20ms);
    promise.set_value(7);
  });
  EXPECT_EQ(future.get(), 7);
  setter.join();
}

TEST(Future, TimedGetThrowsTimeoutErrorAndWaitReportsFalse) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  const auto start = Clock::now();
  EXPECT_THROW(future.get(50ms), cohort::TimeoutError);
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 2s);
  EXPECT_FALSE(future.wait(10ms));
  promise.set_value(1);
  EXPECT_TRUE(future.wait(10ms));
}

TEST(Future, TimeoutMessageNamesTheCallAndTheWait) {
  cohort::Promise<int> promise;
  try {
    promise.get_future().get(20ms);
    FAIL();
  } catch (const cohort::TimeoutError& e) {
    EXPECT_STREQ(e.what(), "Future.get: timed out after 20 ms");
  }
}

TEST(Future, ExceptionKeepsItsType) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  promise.set_exception(std::make_exception_ptr(std::out_of_range("index 9")));
  EXPECT_THROW(future.get(), std::out_of_range);
  auto error = future.exception();
  ASSERT_TRUE(error);
  EXPECT_THROW(std::rethrow_exception(error), std::out_of_range);
}

TEST(Future, ExceptionIsNullOnSuccess) {
  cohort::Promise<int> promise;
  promise.set_value(1);
  EXPECT_EQ(promise.get_future().exception(1s), nullptr);
}

TEST(Future, CancelSucceedsOnlyBeforeTheWorkStarts) {
  cohort::Promise<int> pending;
  auto future = pending.get_future();
  EXPECT_TRUE(future.cancel());
  EXPECT_TRUE(future.cancelled());
  EXPECT_TRUE(future.done());
  EXPECT_FALSE(pending.set_running_or_notify_cancel());
  EXPECT_THROW(future.get(), cohort::CancelledError);
  EXPECT_THROW(future.exception(), cohort::CancelledError);

  cohort::Promise<int> started;
  auto running = started.get_future();
  EXPECT_TRUE(started.set_running_or_notify_cancel());
  EXPECT_TRUE(running.running());
  EXPECT_FALSE(running.cancel());
  started.set_value(3);
  EXPECT_FALSE(running.cancel());
  EXPECT_FALSE(running.cancelled());
  EXPECT_EQ(running.get(), 3);
}

TEST(Future, SettingTwiceIsAnInvalidState) {
  cohort::Promise<int> promise;
  promise.set_value(1);
  EXPECT_THROW(promise.set_value(2), cohort::InvalidStateError);
  EXPECT_THROW(promise.set_exception(std::make_exception_ptr(std::runtime_error("x"))), cohort::InvalidStateError);
  EXPECT_EQ(promise.get_future().get(), 1);
}

TEST(Future, AbandonedPromiseBreaksItsFuture) {
  cohort::Future<int> future;
  {
    cohort::Promise<int> promise;
    future = promise.get_future();
  }
  EXPECT_THROW(future.get(), cohort::BrokenPromise);
}

TEST(Future, EmptyHandleThrowsInvalidState) {
  cohort::Future<int> future;
  EXPECT_FALSE(future.valid());
  EXPECT_THROW(future.get(), cohort::InvalidStateError);
  EXPECT_THROW(future.done(), cohort::InvalidStateError);
}

TEST(Future, VoidFuture) {
  cohort::Promise<void> promise;
  auto future = promise.get_future();
  promise.set_value();
  future.get();
  EXPECT_TRUE(future.done());
}

TEST(Future, CallbackRunsExactlyOnceOnTheCompletingThread) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  std::atomic<int> calls{0};
  std::thread::id ran_on;
  future.add_done_callback([&](const cohort::Future<int>& done) {
    ++calls;
    ran_on = std::this_thread::get_id();
    EXPECT_EQ(done, future);
    EXPECT_EQ(done.get(), 5);
  });
  std::thread setter([&] { promise.set_value(5); });
  const auto setter_id = setter.get_id();
  setter.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(ran_on, setter_id);
}

TEST(Future, CallbackOnADoneFutureRunsAtOnce) {
  cohort::Promise<int> promise;
  promise.set_value(1);
  int calls = 0;
  promise.get_future().add_done_callback([&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(Future, CallbacksMayUseTheFutureWithoutDeadlock) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  int nested = 0;
  future.add_done_callback([&](const cohort::Future<int>& done) {
    EXPECT_TRUE(done.done());
    done.add_done_callback([&] { ++nested; });  // re-entry: the state's lock is not held here
  });
  promise.set_value(1);
  EXPECT_EQ(nested, 1);
}

TEST(Future, ThrowingCallbackDoesNotStopTheOthers) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  int later = 0;
  future.add_done_callback([] { throw std::runtime_error("callback failure (expected in this test)"); });
  future.add_done_callback([&] { ++later; });
  promise.set_value(1);
  EXPECT_EQ(later, 1);
  EXPECT_EQ(future.get(), 1);
}

TEST(Future, IsHashableAndComparable) {
  cohort::Promise<int> a;
  cohort::Promise<int> b;
  std::unordered_map<cohort::Future<int>, std::string> names;
  names[a.get_future()] = "a";
  names[b.get_future()] = "b";
  EXPECT_EQ(names.size(), 2u);
  EXPECT_EQ(names.at(a.get_future()), "a");
  const auto copy = a.get_future();
  EXPECT_EQ(copy, a.get_future());
  EXPECT_FALSE(copy == b.get_future());
}

TEST(Future, ManyBlockedThreadsAllWake) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  std::atomic<int> woken{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 8; ++i)
    waiters.emplace_back([&] {
      if (future.get() == 9) ++woken;
    });
  std::this_thread::sleep_for(20ms);
  promise.set_value(9);
  for (auto& waiter : waiters) waiter.join();
  EXPECT_EQ(woken.load(), 8);
}

TEST(Future, CoroutineAwaitsAValueSetByAThread) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  std::thread setter([&] {
    std::this_thread::sleep_for(20ms);
    promise.set_value(11);
  });
  const int value = cohort::run([](cohort::Future<int> f) -> cohort::task<int> { co_return co_await f.async_get(); }(future));
  setter.join();
  EXPECT_EQ(value, 11);
}

TEST(Future, CoroutineSeesTheExceptionType) {
  cohort::Promise<int> promise;
  promise.set_exception(std::make_exception_ptr(std::invalid_argument("nope")));
  EXPECT_THROW(cohort::run(promise.get_future().async_get()), std::invalid_argument);
}

TEST(Future, CancellingTheAwaiterLeavesTheFutureAlone) {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
  cohort::run([](cohort::Future<int> f) -> cohort::task<void> {
    auto waiter = cohort::spawn(f.async_get());
    co_await cohort::sleep(20ms);
    EXPECT_TRUE(waiter.cancel());
    EXPECT_THROW(co_await waiter.async_get(), cohort::CancelledError);
    EXPECT_TRUE(waiter.cancelled());
  }(future));
  EXPECT_FALSE(future.done());
  promise.set_value(1);  // completing after the waiter was cancelled touches nothing stale
  EXPECT_EQ(future.get(), 1);
}

TEST(Future, AsyncGetTaskOutlivesTheHandleItCameFrom) {
  cohort::Promise<int> promise;
  auto awaiting = [&] {
    auto future = promise.get_future();
    return future.async_get();
  }();
  promise.set_value(4);
  EXPECT_EQ(cohort::run(std::move(awaiting)), 4);
}

TEST(Future, EverySpellingOfADoneCallbackCompilesAndRuns) {
  cohort::Promise<int> pending;
  std::thread setter([&] {
    std::this_thread::sleep_for(10ms);
    pending.set_value(1);
  });
  EXPECT_EQ(cohort_test::run_every_callback_spelling(pending.get_future()), 6);
  setter.join();

  cohort::Promise<void> done;
  done.set_value();
  EXPECT_EQ(cohort_test::run_every_callback_spelling(done.get_future()), 6);
}

}  // namespace
