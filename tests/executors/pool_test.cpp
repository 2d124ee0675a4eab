// Pool and AsyncResult: apply, map, imap, starmap, callbacks, close/join/terminate, and a pool that
// outlives the death of its workers. Run under every start method.
#include "cohort/pool.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <list>
#include <mutex>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cohort/context.hpp"
#include "cohort/error.hpp"
#include "cohort/runtime.hpp"
#include "resource_check.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int pid_of_worker() { return ::getpid(); }
int sleep_then(int milliseconds, int value) {
  std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
  return value;
}
int sleep_then_twice(int milliseconds) { return sleep_then(milliseconds, 2 * milliseconds); }
int slow_last(int x) { return sleep_then(x == 9 ? 1500 : 0, x); }
int slow_first(int x) { return sleep_then(x == 0 ? 300 : 0, x); }
int die_by(int how) {
  cohort_test::end_this_process(how);
  return 0;
}
int die_by_or_return(int how) { return how < 0 ? how : die_by(how); }
long times_three(long x) { return 3 * x; }
std::string shout(const std::string& word) { return word + "!"; }
int as_number(bool flag) { return flag ? 1 : 0; }
int checked(int x) {
  if (x == 3) throw std::out_of_range("three is out of range");
  return x;
}

/// Every test must leave no descriptors, no shared memory mapped and no zombie behind.
class PoolTest : public cohort_test::LeavesNothingBehind {};

TEST_F(PoolTest, ApplyTakesItsArgumentsAsATuple) {
  cohort::Pool pool(2);
  EXPECT_EQ(pool.processes(), 2u);
  EXPECT_EQ(pool.apply(square, std::tuple{3}), 9);
  EXPECT_EQ(pool.apply(add, std::tuple{2, 5}), 7);
  EXPECT_NE(pool.apply(pid_of_worker), ::getpid());
}

TEST_F(PoolTest, ApplyAsyncRunsCallbacksOnceOnAPoolThread) {
  cohort::Pool pool(2);
  std::mutex mutex;
  std::vector<int> results;
  std::vector<std::string> errors;
  std::set<std::thread::id> threads;
  std::vector<cohort::AsyncResult<int>> pending;
  for (int i = 0; i < 6; ++i)
    pending.push_back(pool.apply_async(
        checked, std::tuple{i},
        [&](int r) {
          std::lock_guard lock(mutex);
          results.push_back(r);
          threads.insert(std::this_thread::get_id());
        },
        [&](std::exception_ptr e) {
          std::lock_guard lock(mutex);
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& error) {
            errors.push_back(error.what());
          }
          threads.insert(std::this_thread::get_id());
        }));
  for (auto& r : pending) r.wait();
  EXPECT_THROW(pending[3].get(), std::out_of_range);
  EXPECT_FALSE(pending[3].successful());
  EXPECT_TRUE(pending[2].successful());
  // The callbacks ran before wait() returned: they run as the results complete.
  std::lock_guard lock(mutex);
  std::sort(results.begin(), results.end());
  EXPECT_EQ(results, (std::vector<int>{0, 1, 2, 4, 5}));
  EXPECT_EQ(errors, (std::vector<std::string>{"three is out of range"}));
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_FALSE(threads.contains(std::this_thread::get_id()));
}

TEST_F(PoolTest, AsyncResultWaitsTimesOutAndReports) {
  cohort::Pool pool(1);
  auto slow = pool.apply_async(sleep_then, std::tuple{400, 5});
  EXPECT_FALSE(slow.ready());
  EXPECT_THROW((void)slow.successful(), std::logic_error);
  EXPECT_THROW(slow.get(10ms), cohort::TimeoutError);
  EXPECT_FALSE(slow.wait(10ms));
  EXPECT_EQ(slow.get(5s), 5);
  EXPECT_TRUE(slow.ready());
  EXPECT_TRUE(slow.successful());
}

TEST_F(PoolTest, MapPicksAChunksizeAndKeepsOrder) {
  cohort::Pool pool(2);
  std::vector<int> inputs(10000);
  std::iota(inputs.begin(), inputs.end(), 0);
  const auto results = pool.map(square, inputs);
  ASSERT_EQ(results.size(), inputs.size());
  for (std::size_t i = 0; i < results.size(); ++i) ASSERT_EQ(results[i], static_cast<int>(i * i));
  EXPECT_EQ(pool.map(square, inputs, 1).size(), inputs.size());
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
  EXPECT_THROW(pool.map(checked, std::vector<int>{1, 2, 3, 4}, 1), std::out_of_range);
}

// Chunks are encoded straight from a sized random-access range (numbers in one block when contiguous)
// and gathered first from any other: every way must give the same results.
TEST_F(PoolTest, MapTakesAnyRangeOfInputs) {
  cohort::Pool pool(2);
  const std::vector<int> numbers{1, 2, 3, 4, 5, 6, 7};
  const std::vector<int> squares{1, 4, 9, 16, 25, 36, 49};
  for (std::size_t chunksize : {0, 1, 3, 100}) {
    EXPECT_EQ(pool.map(square, numbers, chunksize), squares);
    EXPECT_EQ(pool.map(square, std::list<int>(numbers.begin(), numbers.end()), chunksize), squares);
    EXPECT_EQ(pool.map(square, std::deque<int>(numbers.begin(), numbers.end()), chunksize), squares);
    EXPECT_EQ(pool.map(square, std::views::iota(1, 8), chunksize), squares);
    EXPECT_EQ(pool.map(shout, std::vector<std::string>{"a", "", "long word"}, chunksize),
              (std::vector<std::string>{"a!", "!", "long word!"}));
    EXPECT_EQ(pool.map(as_number, std::vector<bool>{true, false, true}, chunksize), (std::vector<int>{1, 0, 1}));
  }
}

// Large maps one after another: each chunk's call is encoded in a buffer the pool kept from the last map.
TEST_F(PoolTest, LargeMapsOneAfterAnother) {
  cohort::Pool pool(2);
  std::vector<long> inputs(100'000);
  std::iota(inputs.begin(), inputs.end(), 0L);
  for (int round = 0; round < 4; ++round) {
    const auto results = pool.map(times_three, inputs);
    ASSERT_EQ(results.size(), inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) ASSERT_EQ(results[i], 3 * inputs[i]);
  }
}

TEST_F(PoolTest, TerminateCancelsAMapInProgress) {
  cohort::Pool pool(2);
  auto running = pool.map_async(sleep_then_twice, std::vector<int>(8, 60000), 1);
  std::this_thread::sleep_for(100ms);
  pool.terminate();
  EXPECT_THROW(running.get(1s), cohort::CancelledError);
}

TEST_F(PoolTest, MapAsyncDeliversTheWholeListToItsCallback) {
  cohort::Pool pool(2);
  std::atomic<int> calls{0};
  std::vector<int> seen;
  auto result = pool.map_async(square, std::vector<int>{1, 2, 3}, 0, [&](const std::vector<int>& all) {
    seen = all;
    ++calls;
  });
  EXPECT_EQ(result.get(), (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(seen, (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(PoolTest, ImapYieldsInOrderWhileLaterTasksStillRun) {
  cohort::Pool pool(2);
  std::vector<int> inputs(10);
  std::iota(inputs.begin(), inputs.end(), 0);
  const auto start = Clock::now();
  auto results = pool.imap(slow_last, inputs);
  auto it = results.begin();
  EXPECT_EQ(*it, 0);
  EXPECT_LT(Clock::now() - start, 1000ms) << "the first result waited for the last task";
  std::vector<int> all;
  for (; it != results.end(); ++it) all.push_back(*it);
  EXPECT_EQ(all, inputs);
}

TEST_F(PoolTest, ImapUnorderedYieldsAsTasksFinish) {
  cohort::Pool pool(2);
  std::vector<int> inputs(6);
  std::iota(inputs.begin(), inputs.end(), 0);
  std::vector<int> order;
  for (int x : pool.imap_unordered(slow_first, inputs)) order.push_back(x);
  EXPECT_NE(order.front(), 0);
  EXPECT_EQ(order.back(), 0);
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, inputs);
}

TEST_F(PoolTest, StarmapUnpacksTuples) {
  cohort::Pool pool(2);
  EXPECT_EQ(pool.starmap(add, std::vector<std::tuple<int, int>>{{1, 2}, {3, 4}}), (std::vector<int>{3, 7}));
  auto async = pool.starmap_async(add, std::vector<std::tuple<int, int>>{{5, 5}});
  EXPECT_EQ(async.get(), std::vector<int>{10});
}

TEST_F(PoolTest, JoinBeforeCloseIsAnErrorAndCloseRefusesNewWork) {
  cohort::Pool pool(1);
  EXPECT_THROW(pool.join(), std::logic_error);
  auto queued = pool.apply_async(sleep_then, std::tuple{100, 1});
  pool.close();
  EXPECT_THROW(pool.apply(square, std::tuple{1}), cohort::Error);
  EXPECT_THROW(pool.map(square, std::vector<int>(1000, 1), 1), cohort::Error);
  EXPECT_THROW(pool.imap(square, std::vector<int>(10, 1)), cohort::Error);
  pool.join();
  EXPECT_EQ(queued.get(), 1);  // queued work still ran
  EXPECT_TRUE(pool.worker_pids().empty());
}

class PoolWorkerDeath : public PoolTest, public testing::WithParamInterface<int> {};

TEST_P(PoolWorkerDeath, FailsOnlyTheRunningTaskAndReplacesTheWorker) {
  cohort::Pool pool(2);
  const auto before = pool.worker_pids();
  std::vector<cohort::AsyncResult<int>> others;
  for (int i = 0; i < 8; ++i) others.push_back(pool.apply_async(sleep_then, std::tuple{20, i}));
  auto dying = pool.apply_async(die_by, std::tuple{GetParam()});
  try {
    dying.get(5s);
    FAIL() << "no exception";
  } catch (const cohort::ProcessError& e) {
    const std::string expected[] = {"signal 9 (SIGKILL)", "signal 6 (SIGABRT)", "exited with code 3"};
    EXPECT_NE(std::string(e.what()).find(expected[GetParam()]), std::string::npos) << e.what();
  }
  for (int i = 0; i < 8; ++i) EXPECT_EQ(others[i].get(5s), i);
  EXPECT_EQ(pool.apply(square, std::tuple{6}), 36);  // the pool serves on
  const auto after = pool.worker_pids();
  EXPECT_EQ(after.size(), 2u);
  EXPECT_NE(after, before);
}

// A map's chunk that kills its worker fails the map with the worker's end; the pool serves on.
TEST_P(PoolWorkerDeath, FailsAMapWhoseChunkKilledItsWorker) {
  cohort::Pool pool(2);
  std::vector<int> hows(40, -1);
  hows[17] = GetParam();
  EXPECT_THROW(pool.map(die_by_or_return, hows, 1), cohort::ProcessError);
  EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
}

// On an idle pool apply() sends its task and waits for the reply on the calling thread; the death must
// reach it all the same.
TEST_P(PoolWorkerDeath, FailsAnApplyWaitingOnTheCallingThread) {
  cohort::Pool pool(1);
  EXPECT_EQ(pool.apply(square, std::tuple{2}), 4);
  const auto start = Clock::now();
  EXPECT_THROW(pool.apply(die_by, std::tuple{GetParam()}), cohort::ProcessError);
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(pool.apply(square, std::tuple{6}), 36);
}

INSTANTIATE_TEST_SUITE_P(KilledAbortedOrExited, PoolWorkerDeath, testing::Values(0, 1, 2));

TEST_F(PoolTest, ApplyFromManyThreadsBesideAsynchronousWork) {
  cohort::Pool pool(2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i)
        if (pool.apply(add, std::tuple{t, i}) != t + i) ++wrong;
    });
  std::vector<cohort::AsyncResult<int>> asynchronous;
  for (int i = 0; i < 300; ++i) asynchronous.push_back(pool.apply_async(square, std::tuple{i}));
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(wrong.load(), 0);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(asynchronous[i].get(5s), i * i);
}

// A caller waiting in apply() for a long task must not keep the pool from serving others meanwhile.
TEST_F(PoolTest, ALongApplyDoesNotHoldUpOtherWork) {
  cohort::Pool pool(2);
  std::thread caller([&] { EXPECT_EQ(pool.apply(sleep_then, std::tuple{1500, 1}), 1); });
  std::this_thread::sleep_for(200ms);
  const auto start = Clock::now();
  auto other = pool.apply_async(square, std::tuple{3});
  EXPECT_EQ(other.get(5s), 9);
  EXPECT_LT(Clock::now() - start, 500ms);
  caller.join();
}

TEST_F(PoolTest, TerminateEndsAWaitingApply) {
  cohort::Pool pool(1);
  std::thread caller([&] { EXPECT_THROW(pool.apply(sleep_then, std::tuple{60000, 1}), cohort::CancelledError); });
  std::this_thread::sleep_for(200ms);
  const auto start = Clock::now();
  pool.terminate();
  caller.join();
  EXPECT_LT(Clock::now() - start, 1s);
}

TEST_F(PoolTest, TasksQueuedBehindACrashGoToOtherWorkers) {
  cohort::Pool pool(1);
  EXPECT_EQ(pool.apply(square, std::tuple{2}), 4);
  // With one worker, the queued tasks were sent to the worker that dies; none of them may be lost.
  auto dying = pool.apply_async(die_by, std::tuple{0});
  std::vector<cohort::AsyncResult<int>> behind;
  for (int i = 0; i < 20; ++i) behind.push_back(pool.apply_async(square, std::tuple{i}));
  EXPECT_THROW(dying.get(5s), cohort::ProcessError);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(behind[i].get(5s), i * i);
}

TEST_F(PoolTest, TerminateStopsRunningWorkWithinASecond) {
  cohort::Pool pool(2);
  auto running = pool.apply_async(sleep_then, std::tuple{60000, 1});
  auto queued = pool.map_async(square, std::vector<int>{1, 2, 3});
  queued.wait();
  std::this_thread::sleep_for(50ms);
  const auto pids = pool.worker_pids();
  const auto start = Clock::now();
  pool.terminate();
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_THROW(running.get(1s), cohort::CancelledError);
  for (int pid : pids) EXPECT_TRUE(cohort_test::process_gone(pid));
  pool.join();  // allowed after terminate
}

TEST_F(PoolTest, TheDestructorTerminates) {
  std::vector<int> pids;
  cohort::AsyncResult<int> running(cohort::Future<int>{});
  const auto start = Clock::now();
  {
    cohort::Pool pool(1);
    running = pool.apply_async(sleep_then, std::tuple{60000, 1});
    pids = pool.worker_pids();
  }
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_THROW(running.get(1s), cohort::CancelledError);
  for (int pid : pids) EXPECT_TRUE(cohort_test::process_gone(pid));
}

TEST_F(PoolTest, MaxTasksPerChildAndTheContextsPool) {
  cohort::Pool pool({.processes = 1, .max_tasks_per_child = 1});
  std::set<int> pids;
  for (int i = 0; i < 3; ++i) pids.insert(pool.apply(pid_of_worker));
  EXPECT_EQ(pids.size(), 3u);
  auto other = cohort::get_context(cohort::StartMethod::fork).pool(2);
  EXPECT_EQ(other.start_method(), cohort::StartMethod::fork);
  EXPECT_EQ(other.map(square, std::vector<int>{1, 2}), (std::vector<int>{1, 4}));
}

TEST_F(PoolTest, AsyncResultsAreAwaitable) {
  cohort::Pool pool(2);
  const int r = cohort::Runtime().run([&]() -> cohort::task<int> {
    co_return co_await pool.apply_async(square, std::tuple{8}).async_get();
  }());
  EXPECT_EQ(r, 64);
}

}  // namespace
