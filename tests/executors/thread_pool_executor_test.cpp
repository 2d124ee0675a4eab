#include "cohort/thread_pool_executor.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cohort/runtime.hpp"
#include "done_callback_spellings.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int square(int x) { return x * x; }

struct Gate {
  std::latch latch{1};
  void open() { latch.count_down(); }
  void wait() { latch.wait(); }
};

TEST(ThreadPoolExecutor, SubmitReturnsAFutureOfTheResult) {
  cohort::ThreadPoolExecutor pool(2);
  EXPECT_EQ(pool.submit(square, 7).get(), 49);
  EXPECT_EQ(pool.submit([](const std::string& a, const std::string& b) { return a + b; }, std::string("co"),
                        std::string("hort"))
                .get(),
            "cohort");
  pool.submit([] {}).get();
}

TEST(ThreadPoolExecutor, ExceptionsKeepTheirTypeThroughGetAndCoAwait) {
  cohort::ThreadPoolExecutor pool(1);
  auto failing = pool.submit([]() -> int { throw std::out_of_range("no such index"); });
  EXPECT_THROW(failing.get(), std::out_of_range);
  EXPECT_THROW(cohort::run(failing.async_get()), std::out_of_range);
  try {
    failing.get();
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "no such index");
  }
}

TEST(ThreadPoolExecutor, RunsUpToMaxWorkersAtOnce) {
  cohort::ThreadPoolExecutor pool(2);
  EXPECT_EQ(pool.max_workers(), 2u);
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::vector<cohort::Future<void>> futures;
  for (int i = 0; i < 6; ++i)
    futures.push_back(pool.submit([&] {
      const int now = ++running;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(50ms);
      --running;
    }));
  for (auto& f : futures) f.get();
  EXPECT_EQ(peak.load(), 2);
}

TEST(ThreadPoolExecutor, DefaultMaxWorkersFollowsPython) {
  cohort::ThreadPoolExecutor pool;
  const auto cpus = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_EQ(pool.max_workers(), std::min<std::size_t>(32, cpus + 4));
}

TEST(ThreadPoolExecutor, InitializerRunsOncePerWorkerThread) {
  std::mutex mutex;
  std::set<std::thread::id> initialized;
  thread_local bool ready = false;
  cohort::ThreadPoolExecutor pool({.max_workers = 2, .initializer = [&] {
                                     ready = true;
                                     std::lock_guard lock(mutex);
                                     initialized.insert(std::this_thread::get_id());
                                   }});
  std::vector<cohort::Future<bool>> futures;
  for (int i = 0; i < 20; ++i)
    futures.push_back(pool.submit([] {
      std::this_thread::sleep_for(5ms);
      return ready;
    }));
  for (auto& f : futures) EXPECT_TRUE(f.get());
  pool.shutdown();
  EXPECT_GE(initialized.size(), 1u);
  EXPECT_LE(initialized.size(), 2u);
}

TEST(ThreadPoolExecutor, FailingInitializerBreaksThePool) {
  cohort::ThreadPoolExecutor pool({.max_workers = 1, .initializer = [] { throw std::runtime_error("no config"); }});
  auto pending = pool.submit(square, 2);
  try {
    pending.get(5s);
    FAIL();
  } catch (const cohort::BrokenThreadPool& e) {
    EXPECT_NE(std::string(e.what()).find("no config"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool.submit(square, 3), cohort::BrokenThreadPool);
}

TEST(ThreadPoolExecutor, SubmitAfterShutdownThrows) {
  cohort::ThreadPoolExecutor pool(1);
  pool.shutdown();
  EXPECT_THROW(pool.submit(square, 1), cohort::Error);
  pool.shutdown();  // idempotent
}

TEST(ThreadPoolExecutor, ShutdownWaitsForQueuedWork) {
  cohort::ThreadPoolExecutor pool(1);
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i)
    pool.submit([&] {
      std::this_thread::sleep_for(5ms);
      ++ran;
    });
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), 10);
}

TEST(ThreadPoolExecutor, ShutdownWithoutWaitReturnsAtOnceAndWorkStillRuns) {
  std::atomic<int> ran{0};
  {
    cohort::ThreadPoolExecutor pool(1);
    pool.submit([&] {
      std::this_thread::sleep_for(200ms);
      ++ran;
    });
    const auto start = Clock::now();
    pool.shutdown(false);
    EXPECT_LT(Clock::now() - start, 150ms);
  }  // the destructor waits
  EXPECT_EQ(ran.load(), 1);
}

TEST(ThreadPoolExecutor, ShutdownCancelFuturesCancelsWorkThatHasNotStarted) {
  cohort::ThreadPoolExecutor pool(1);
  Gate gate;
  auto blocker = pool.submit([&] { gate.wait(); });
  std::this_thread::sleep_for(20ms);
  std::vector<cohort::Future<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(pool.submit(square, i));
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    gate.open();
  });
  pool.shutdown(true, true);
  opener.join();
  blocker.get();
  for (auto& f : queued) {
    EXPECT_TRUE(f.cancelled());
    EXPECT_THROW(f.get(), cohort::CancelledError);
  }
}

TEST(ThreadPoolExecutor, QueuedFutureCanBeCancelledAndNeverRuns) {
  cohort::ThreadPoolExecutor pool(1);
  Gate gate;
  auto blocker = pool.submit([&] { gate.wait(); });
  std::atomic<bool> ran{false};
  auto queued = pool.submit([&] { ran = true; });
  EXPECT_TRUE(queued.cancel());
  gate.open();
  blocker.get();
  pool.shutdown();
  EXPECT_FALSE(ran.load());
  EXPECT_TRUE(queued.cancelled());
}

TEST(ThreadPoolExecutor, RunningFutureReportsRunningAndCannotBeCancelled) {
  cohort::ThreadPoolExecutor pool(1);
  Gate started;
  Gate release;
  auto future = pool.submit([&] {
    started.open();
    release.wait();
    return 1;
  });
  started.wait();
  EXPECT_TRUE(future.running());
  EXPECT_FALSE(future.cancel());
  release.open();
  EXPECT_EQ(future.get(), 1);
}

TEST(ThreadPoolExecutor, DestructorWaitsForAllWork) {
  std::atomic<int> ran{0};
  {
    cohort::ThreadPoolExecutor pool(2);
    for (int i = 0; i < 8; ++i)
      pool.submit([&] {
        std::this_thread::sleep_for(10ms);
        ++ran;
      });
  }
  EXPECT_EQ(ran.load(), 8);
}

TEST(ThreadPoolExecutor, ThreadsCarryTheNamePrefix) {
  cohort::ThreadPoolExecutor pool({.max_workers = 1, .thread_name_prefix = "crunch"});
  const auto name = pool.submit([] {
                          char buffer[16] = {};
                          pthread_getname_np(pthread_self(), buffer, sizeof buffer);
                          return std::string(buffer);
                        })
                        .get();
  EXPECT_EQ(name, "crunch_0");
}

TEST(ThreadPoolExecutor, ManyProducersManyTasks) {
  cohort::ThreadPoolExecutor pool(2);
  std::vector<std::thread> producers;
  std::atomic<long> total{0};
  for (int p = 0; p < 4; ++p)
    producers.emplace_back([&] {
      std::vector<cohort::Future<int>> futures;
      for (int i = 0; i < 2000; ++i) futures.push_back(pool.submit(square, i % 100));
      for (auto& f : futures) total += f.get();
    });
  for (auto& t : producers) t.join();
  long expected = 0;
  for (int i = 0; i < 2000; ++i) expected += (i % 100) * (i % 100);
  EXPECT_EQ(total.load(), 4 * expected);
}

TEST(ThreadPoolExecutor, WorkMayShutItsOwnPoolDown) {
  auto pool = std::make_unique<cohort::ThreadPoolExecutor>(1);
  auto future = pool->submit([&] { pool->shutdown(true); return 1; });
  EXPECT_EQ(future.get(5s), 1);
  pool.reset();
}

// Submits racing with shutdown: each one either throws or its future completes; none is left pending.
TEST(ThreadPoolExecutor, SubmitRacingShutdownEitherThrowsOrRuns) {
  for (int round = 0; round < 200; ++round) {
    cohort::ThreadPoolExecutor pool(2);
    std::vector<cohort::Future<int>> accepted;
    std::thread submitter([&] {
      for (int i = 0; i < 50; ++i) {
        try {
          accepted.push_back(pool.submit(square, i));
        } catch (const cohort::Error&) {
          return;
        }
      }
    });
    pool.shutdown(round % 2 == 0);
    submitter.join();
    for (auto& f : accepted) ASSERT_TRUE(f.wait(5s)) << "round " << round;
  }
}

// Workers that went to sleep after a quiet spell are woken for new work, one task or a burst.
TEST(ThreadPoolExecutor, IdleWorkersWakeForLaterWork) {
  cohort::ThreadPoolExecutor pool(3);
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(20ms);  // long past the workers' polling: they all sleep
    EXPECT_EQ(pool.submit(square, round).get(5s), round * round);
    std::this_thread::sleep_for(20ms);
    std::vector<cohort::Future<int>> burst;
    for (int i = 0; i < 100; ++i) burst.push_back(pool.submit(square, i));
    for (int i = 0; i < 100; ++i) EXPECT_EQ(burst[i].get(5s), i * i);
  }
}

// Blocking tasks submitted after the workers went to sleep still run side by side, up to max_workers.
TEST(ThreadPoolExecutor, SleepingWorkersAreWokenForParallelWork) {
  cohort::ThreadPoolExecutor pool(3);
  std::vector<cohort::Future<int>> warmup;
  for (int i = 0; i < 3; ++i) warmup.push_back(pool.submit([] { std::this_thread::sleep_for(20ms); return 0; }));
  for (auto& f : warmup) f.get(5s);
  std::this_thread::sleep_for(20ms);

  std::latch all_running(3);
  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 3; ++i)
    futures.push_back(pool.submit([&] {
      all_running.arrive_and_wait();  // returns only once three workers run at once
      return 1;
    }));
  for (auto& f : futures) EXPECT_EQ(f.get(10s), 1);
}

// The callable and its captures are destroyed once the work ran, even while the future lives on.
TEST(ThreadPoolExecutor, ArgumentsAreReleasedAfterTheWorkRan) {
  cohort::ThreadPoolExecutor pool(1);
  auto payload = std::make_shared<int>(7);
  std::weak_ptr<int> watch = payload;
  auto future = pool.submit([](const std::shared_ptr<int>& p) { return *p; }, std::move(payload));
  EXPECT_EQ(future.get(5s), 7);
  pool.shutdown(true);
  EXPECT_TRUE(watch.expired());
}

TEST(ThreadPoolExecutor, EverySpellingOfADoneCallbackCompilesAndRuns) {
  cohort::ThreadPoolExecutor pool(2);
  EXPECT_EQ(cohort_test::run_every_callback_spelling(pool.submit([] {
              std::this_thread::sleep_for(10ms);
              return 3;
            })),
            6);
}

int take_ownership(std::unique_ptr<int> p, int& calls) {
  ++calls;
  return *p;
}

TEST(ThreadPoolExecutor, MoveOnlyArgumentsTakenByValueAreMovedIn) {
  cohort::ThreadPoolExecutor pool(1);
  EXPECT_EQ(pool.submit([](std::unique_ptr<int> p) { return *p * 2; }, std::make_unique<int>(21)).get(), 42);
  EXPECT_EQ(pool.submit([](auto p) { return *p + 1; }, std::make_unique<int>(1)).get(), 2);
  int calls = 0;  // a T& parameter gets the pool's copy of the argument, as the stored call decides
  EXPECT_EQ(pool.submit(take_ownership, std::make_unique<int>(5), calls).get(), 5);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(pool.submit(take_ownership, std::make_unique<int>(6), std::ref(calls)).get(), 6);
  EXPECT_EQ(calls, 1);
}

}  // namespace
