// ProcessPoolExecutor: what runs in its workers, its futures, map, shutdown, cancellation, and what a
// worker's death does to it. Run under every start method.
#include "cohort/process_pool_executor.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cohort/as_completed.hpp"
#include "cohort/connection.hpp"
#include "cohort/error.hpp"
#include "cohort/remote_exception.hpp"
#include "cohort/run_in_executor.hpp"
#include "cohort/runtime.hpp"
#include "cohort/wait.hpp"
#include "resource_check.hpp"
#include "done_callback_spellings.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int square(int x) { return x * x; }
int pid_of_worker() { return ::getpid(); }
std::string describe(const std::string& word, long count) { return word + " x" + std::to_string(count); }
int sleep_then(int milliseconds, int value) {
  std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
  return value;
}
/// Dies a moment after it starts, so that the test has queued more work by then.
void die_by(int how) {
  std::this_thread::sleep_for(100ms);
  cohort_test::end_this_process(how);
}
struct Custom {
  int value = 0;
};
int throw_custom() { throw Custom{42}; }
struct LocalOnlyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[gnu::noinline]] int throw_local_only(int x) { throw LocalOnlyError("thrown at " + std::to_string(x)); }
int negative_sqrt(int x) {
  if (x < 0) throw std::invalid_argument("negative: " + std::to_string(x));
  return x;
}

struct Point {
  double x = 0;
  double y = 0;
  std::vector<std::string> tags;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(x, y, tags);
  }
};
Point shifted(Point p, double by) {
  p.x += by;
  p.y += by;
  p.tags.push_back("shifted");
  return p;
}

struct Unsendable {
  template <class Archive>
  void save(Archive&) const {
    throw std::runtime_error("cannot write this");
  }
  template <class Archive>
  void load(Archive&) {}
};
Unsendable make_unsendable() { return {}; }

int initialized = 0;
void initialize() { initialized = 17; }
int read_initialized() { return initialized; }
void failing_initializer() { throw std::runtime_error("the initializer refuses"); }

int named_cube(int x) { return x * x * x; }
COHORT_REMOTE(named_cube);

struct StaticHolder {
  static int triple(int x) { return 3 * x; }
};

/// Every test must leave no descriptors, no shared memory mapped and no zombie behind.
class ProcessPoolExecutorTest : public cohort_test::LeavesNothingBehind {};

TEST_F(ProcessPoolExecutorTest, SubmitRunsInAWorkerProcess) {
  cohort::ProcessPoolExecutor pool(2);
  EXPECT_EQ(pool.max_workers(), 2u);
  EXPECT_EQ(pool.submit(square, 7).get(), 49);
  const int worker = pool.submit(&pid_of_worker).get();
  EXPECT_NE(worker, ::getpid());
  const auto pids = pool.worker_pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), worker), pids.end());
}

TEST_F(ProcessPoolExecutorTest, RunsFunctionsLambdasStaticMembersAndPointersChosenAtRunTime) {
  cohort::ProcessPoolExecutor pool(2);
  EXPECT_EQ(pool.submit(describe, "abc", 3).get(), "abc x3");  // converted to std::string and long
  EXPECT_EQ(pool.submit([](int a, int b) { return a - b; }, 10, 4).get(), 6);
  EXPECT_EQ(pool.submit(&StaticHolder::triple, 5).get(), 15);
  int (*chosen)(int) = std::getenv("COHORT_NO_SUCH_VARIABLE") ? &StaticHolder::triple : &square;
  EXPECT_EQ(pool.submit(chosen, 9).get(), 81);
  const auto p = pool.submit(shifted, Point{1, 2, {"a"}}, 0.5).get();
  EXPECT_EQ(p.x, 1.5);
  EXPECT_EQ(p.y, 2.5);
  EXPECT_EQ(p.tags, (std::vector<std::string>{"a", "shifted"}));
  pool.submit([] {}).get();  // void
}

TEST_F(ProcessPoolExecutorTest, AFunctionNamedWithCohortRemoteTravelsByItsName) {
  EXPECT_EQ(cohort::detail::make_converted_call(&named_cube, 2).name, "named_cube");
  cohort::ProcessPoolExecutor pool(1);
  EXPECT_EQ(pool.submit(named_cube, 3).get(), 27);
  EXPECT_EQ(pool.map(named_cube, std::vector<int>{1, 2}).collect(), (std::vector<int>{1, 8}));
}

// A worker notes where each exception is thrown: the trace a RemoteError brings starts in the function
// that threw, not in the worker's loop that caught it. Under fork the worker's code is at the parent's
// addresses; spawned workers run the same program at other ones.
TEST_F(ProcessPoolExecutorTest, ARemoteErrorsTraceStartsWhereTheExceptionWasThrown) {
  cohort::ProcessPoolExecutor pool(1);
  try {
    pool.submit(throw_local_only, 5).get();
    FAIL() << "no exception";
  } catch (const cohort::RemoteError& e) {
    EXPECT_STREQ(e.what(), "thrown at 5");
    const std::string trace = e.traceback();
    ASSERT_FALSE(trace.empty());
    if (pool.start_method() == cohort::StartMethod::fork) {
      const auto start = reinterpret_cast<std::uintptr_t>(&throw_local_only);
      const auto first = std::stoull(trace.substr(trace.find("0x") + 2, 16), nullptr, 16);
      EXPECT_GE(first, start) << trace;
      EXPECT_LT(first, start + 512) << trace;
    }
  }
}

TEST_F(ProcessPoolExecutorTest, ExceptionsCrossWithTheirTypeOrAsRemoteError) {
  cohort::ProcessPoolExecutor pool(1);
  try {
    pool.submit(negative_sqrt, -4).get();
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "negative: -4");
    ASSERT_TRUE(cohort::remote_traceback(e).has_value());
    EXPECT_FALSE(cohort::remote_traceback(e)->empty());
  }
  try {
    pool.submit(throw_custom).get();
    FAIL() << "no exception";
  } catch (const cohort::RemoteError& e) {
    EXPECT_NE(e.remote_type().find("Custom"), std::string::npos) << e.remote_type();
  }
  auto f = pool.submit(make_unsendable);
  EXPECT_THROW(f.get(), cohort::SerializationError);
  EXPECT_EQ(pool.submit(square, 3).get(), 9);  // the pool goes on
}

TEST_F(ProcessPoolExecutorTest, MapIsOrderedChunkedAndLazy) {
  cohort::ProcessPoolExecutor pool(2);
  std::vector<int> inputs(1000);
  std::iota(inputs.begin(), inputs.end(), 0);
  for (std::size_t chunksize : {1u, 7u, 1000u, 5000u}) {
    auto results = pool.map(square, inputs, {.chunksize = chunksize});
    std::size_t i = 0;
    for (int r : results) {
      ASSERT_EQ(r, static_cast<int>(i * i));
      ++i;
    }
    EXPECT_EQ(i, inputs.size());
  }
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).collect().empty());
  // A range that is not a container, and a lambda.
  auto doubled = pool.map([](int x) { return 2 * x; }, std::views::iota(0, 10), {.chunksize = 3}).collect();
  EXPECT_EQ(doubled, (std::vector<int>{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}));
}

TEST_F(ProcessPoolExecutorTest, MapTimeoutCountsFromTheCall) {
  cohort::ProcessPoolExecutor pool(1);
  auto results = pool.map([](int ms) { return sleep_then(ms, ms); }, std::vector<int>{0, 2000}, {.timeout = 200ms});
  auto it = results.begin();
  EXPECT_EQ(*it, 0);
  const auto start = Clock::now();
  EXPECT_THROW(++it, cohort::TimeoutError);
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST_F(ProcessPoolExecutorTest, MapRethrowsTheFirstFailureInOrder) {
  cohort::ProcessPoolExecutor pool(2);
  auto results = pool.map(negative_sqrt, std::vector<int>{1, 2, -3, 4}, {.chunksize = 1});
  auto it = results.begin();
  EXPECT_EQ(*it, 1);
  ++it;
  EXPECT_EQ(*it, 2);
  EXPECT_THROW(++it, std::invalid_argument);
}

TEST_F(ProcessPoolExecutorTest, ShutdownRunsQueuedWorkAndRefusesMore) {
  cohort::ProcessPoolExecutor pool(1);
  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(pool.submit(sleep_then, 5, i));
  pool.shutdown();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(futures[i].done());
    EXPECT_EQ(futures[i].get(), i);
  }
  EXPECT_TRUE(pool.worker_pids().empty());
  EXPECT_THROW(pool.submit(square, 1), cohort::Error);
  pool.shutdown();  // again: nothing happens
}

TEST_F(ProcessPoolExecutorTest, ShutdownCanCancelWhatHasNotStarted) {
  cohort::ProcessPoolExecutor pool(1);
  auto running = pool.submit(sleep_then, 300, 1);
  while (!running.running()) std::this_thread::sleep_for(1ms);
  std::vector<cohort::Future<int>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool.submit(square, i));
  pool.shutdown(true, true);
  EXPECT_EQ(running.get(), 1);
  for (auto& f : queued) EXPECT_TRUE(f.cancelled());
}

TEST_F(ProcessPoolExecutorTest, AQueuedFutureCanBeCancelled) {
  cohort::ProcessPoolExecutor pool(1);
  auto running = pool.submit(sleep_then, 300, 1);
  while (!running.running()) std::this_thread::sleep_for(1ms);
  auto queued = pool.submit(square, 4);
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.cancelled());
  EXPECT_THROW(queued.get(), cohort::CancelledError);
  EXPECT_FALSE(running.cancel());  // already running
  EXPECT_EQ(running.get(), 1);
  EXPECT_EQ(pool.submit(square, 5).get(), 25);
}

TEST_F(ProcessPoolExecutorTest, ShutdownWithoutWaitReturnsAtOnceAndTheDestructorWaits) {
  cohort::Future<int> last;
  Clock::duration shutdown_took{};
  {
    cohort::ProcessPoolExecutor pool(1);
    last = pool.submit(sleep_then, 300, 7);
    const auto start = Clock::now();
    pool.shutdown(false);
    shutdown_took = Clock::now() - start;
  }
  EXPECT_LT(shutdown_took, 200ms);
  ASSERT_TRUE(last.done());
  EXPECT_EQ(last.get(), 7);
}

class WorkerDeath : public ProcessPoolExecutorTest, public testing::WithParamInterface<int> {};

TEST_P(WorkerDeath, FailsEveryPendingFutureWithBrokenProcessPoolAtOnce) {
  cohort::ProcessPoolExecutor pool(2);
  EXPECT_EQ(pool.submit(square, 2).get(), 4);  // the workers are up
  const auto start = Clock::now();
  auto dying = pool.submit(die_by, GetParam());
  std::vector<cohort::Future<int>> pending;
  for (int i = 0; i < 10; ++i) pending.push_back(pool.submit(sleep_then, 200, i));
  EXPECT_THROW(dying.get(), cohort::BrokenProcessPool);
  for (auto& f : pending) {
    ASSERT_TRUE(f.wait(1s)) << "a pending future was left waiting";
    if (f.exception()) EXPECT_THROW(f.get(), cohort::BrokenProcessPool);
  }
  EXPECT_LT(Clock::now() - start, 1s);
  try {
    pool.submit(square, 1);
    FAIL() << "a broken pool took work";
  } catch (const cohort::BrokenProcessPool& e) {
    const std::string expected[] = {"signal 9 (SIGKILL)", "signal 6 (SIGABRT)", "exited with code 3"};
    EXPECT_NE(std::string(e.what()).find(expected[GetParam()]), std::string::npos) << e.what();
  }
  EXPECT_TRUE(pool.worker_pids().empty());
}

INSTANTIATE_TEST_SUITE_P(KilledAbortedOrExited, WorkerDeath, testing::Values(0, 1, 2));

TEST_F(ProcessPoolExecutorTest, AWorkerKilledFromOutsideBreaksThePool) {
  cohort::ProcessPoolExecutor pool(1);
  auto running = pool.submit(sleep_then, 5000, 1);
  while (!running.running()) std::this_thread::sleep_for(1ms);
  const auto start = Clock::now();
  ::kill(pool.worker_pids().at(0), SIGKILL);
  EXPECT_THROW(running.get(), cohort::BrokenProcessPool);
  EXPECT_LT(Clock::now() - start, 1s);
}

TEST_F(ProcessPoolExecutorTest, TheInitializerRunsInEveryWorker) {
  cohort::ProcessPoolExecutor pool({.max_workers = 2, .initializer = initialize});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(pool.submit(read_initialized).get(), 17);
}

TEST_F(ProcessPoolExecutorTest, AFailingInitializerBreaksThePool) {
  cohort::ProcessPoolExecutor pool({.max_workers = 1, .initializer = failing_initializer});
  try {
    pool.submit(square, 2).get();
    FAIL() << "no exception";
  } catch (const cohort::BrokenProcessPool& e) {
    EXPECT_NE(std::string(e.what()).find("the initializer refuses"), std::string::npos) << e.what();
  } catch (const cohort::Error& e) {
    // The submit itself may already find the pool broken.
    EXPECT_NE(dynamic_cast<const cohort::BrokenProcessPool*>(&e), nullptr) << e.what();
  }
}

TEST_F(ProcessPoolExecutorTest, MaxTasksPerChildReplacesWorkers) {
  cohort::ProcessPoolExecutor pool({.max_workers = 1, .max_tasks_per_child = 2});
  std::vector<cohort::Future<int>> pids;
  for (int i = 0; i < 6; ++i) pids.push_back(pool.submit(&pid_of_worker));
  std::set<int> distinct;
  for (auto& f : pids) distinct.insert(f.get());
  EXPECT_EQ(distinct.size(), 3u);
}

TEST_F(ProcessPoolExecutorTest, ItsFuturesWorkWithAsCompletedWaitAndCoroutines) {
  cohort::ProcessPoolExecutor pool(2);
  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 50; ++i) futures.push_back(pool.submit(square, i));
  int total = 0;
  for (auto& f : cohort::as_completed(futures, 10s)) total += f.get();
  EXPECT_EQ(total, 40425);
  auto slow = pool.submit(sleep_then, 300, 1);
  auto fast = pool.submit(square, 3);
  auto [done, not_done] = cohort::wait(std::vector{slow, fast}, 5s, cohort::ReturnWhen::first_completed);
  EXPECT_NE(std::find(done.begin(), done.end(), fast), done.end());
  const int sum = cohort::Runtime().run([&]() -> cohort::task<int> {
    const int a = co_await pool.submit(square, 4).async_get();
    const int b = co_await cohort::run_in_executor(pool, square, 5);
    co_return a + b;
  }());
  EXPECT_EQ(sum, 41);
}

TEST_F(ProcessPoolExecutorTest, WorkersDieWithAParentKilledBySigkill) {
  auto [reader, writer] = cohort::Pipe(false);
  cohort::Process parent(
      [](cohort::Connection& out) {
        cohort::ProcessPoolExecutor pool({.max_workers = 2, .start_method = cohort::StartMethod::fork});
        pool.submit(square, 1).get();
        out.send(pool.worker_pids());
        std::this_thread::sleep_for(60s);
      },
      std::move(writer));
  parent.start();
  const auto pids = reader.recv<std::vector<int>>();
  ASSERT_EQ(pids.size(), 2u);
  parent.kill();
  parent.join();
  for (int pid : pids) EXPECT_TRUE(cohort_test::eventually_gone(pid)) << "worker " << pid << " outlived its parent";
}

TEST_F(ProcessPoolExecutorTest, EverySpellingOfADoneCallbackCompilesAndRuns) {
  cohort::ProcessPoolExecutor pool(1);
  EXPECT_EQ(cohort_test::run_every_callback_spelling(pool.submit(sleep_then, 10, 4)), 6);
}

std::string consume(std::string text, std::vector<int> numbers) { return text + std::to_string(numbers.size()); }

TEST_F(ProcessPoolExecutorTest, ByValueParametersTakeTheirDecodedArguments) {
  cohort::ProcessPoolExecutor pool(1);
  EXPECT_EQ(pool.submit(consume, "n=", std::vector<int>{1, 2, 3}).get(), "n=3");
  EXPECT_EQ(pool.submit([](auto text, auto n) { return text + "!" + std::to_string(n); }, std::string("a"), 1).get(), "a!1");
}

}  // namespace
