// A Manager's synchronization objects and the rest of SyncManager's types: locks, a condition, a
// semaphore, an event, a barrier, an array and a joinable queue, used from threads, coroutines, child
// processes (ctest runs this binary under every start method) and pool workers; what a client that dies
// held is let go of, and nothing waits forever for it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cohort/manager.hpp"
#include "cohort/process.hpp"
#include "cohort/process_pool_executor.hpp"
#include "cohort/runtime.hpp"
#include "resource_check.hpp"
#include "sanitizers.hpp"

namespace {

using namespace std::chrono_literals;
using cohort::Proxy;
namespace managed = cohort::managed;

void hold_and_die(Proxy<managed::Lock> lock, Proxy<managed::Event> holding) {
  lock.acquire();
  holding.set();
  ::_exit(3);  // without a release
}

TEST(ManagedLock, OneHolderAtATimeReleasedOnlyByItAndLetGoOfWhenItsClientDies) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // its children start threads to call the manager
  cohort::Manager manager;
  auto lock = manager.lock();
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.locked());
  // Not recursive: this thread's second acquire waits like anyone's.
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(true, 30ms));
  std::thread([lock] {
    EXPECT_FALSE(lock.acquire(false));
    EXPECT_THROW(lock.release(), cohort::Error) << "released by a thread that does not hold it";
  }).join();
  lock.release();
  EXPECT_THROW(lock.release(), cohort::Error);
  // Held by the thread, whichever way its calls go (a non-blocking call takes the shared connection).
  EXPECT_TRUE(lock.acquire());
  lock.call(&managed::Lock::release, managed::Caller::this_thread()).get();
  EXPECT_FALSE(lock.locked());

  {
    std::lock_guard held(lock);  // a copy of a proxy is the same lock
    EXPECT_TRUE(Proxy<managed::Lock>(lock).locked());
  }
  EXPECT_FALSE(lock.locked());

  // A blocked acquire in one thread waits in the server while another thread's calls go on.
  lock.acquire();
  std::atomic<bool> got{false};
  std::thread waiter([lock, &got] {
    got = lock.acquire(true, 5s);
    lock.release();
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(got);
  lock.release();
  waiter.join();
  EXPECT_TRUE(got);

  auto holding = manager.event();
  cohort::Process child(&hold_and_die, lock, holding);
  child.start();
  ASSERT_TRUE(holding.wait(10s));
  child.join();
  EXPECT_EQ(child.exitcode(), 3);
  EXPECT_TRUE(lock.acquire(true, 10s)) << "a dead client's lock was kept";
  lock.release();
  EXPECT_TRUE(cohort_test::zombie_children().empty());
}

TEST(ManagedLock, AnRLockIsReentrantForItsThreadOnly) {
  cohort::Manager manager;
  auto rlock = manager.rlock();
  EXPECT_TRUE(rlock.acquire());
  EXPECT_TRUE(rlock.acquire());
  EXPECT_TRUE(rlock.is_owned());
  EXPECT_EQ(rlock.depth(), 2u);
  std::thread([rlock] {
    EXPECT_FALSE(rlock.is_owned());
    EXPECT_FALSE(rlock.acquire(true, 20ms));
    EXPECT_THROW(rlock.release(), cohort::Error);
  }).join();
  rlock.release();
  EXPECT_EQ(rlock.depth(), 1u);
  rlock.release();
  EXPECT_FALSE(rlock.is_owned());
  std::thread([rlock] {
    EXPECT_TRUE(rlock.acquire(false));
    rlock.release();
  }).join();
}

void produce(Proxy<managed::Condition> ready, Proxy<managed::Value<int>> count, int n) {
  for (int i = 0; i < n; ++i) {
    std::lock_guard held(ready);
    count.set(count.get() + 1);
    ready.notify_all();
  }
}

TEST(ManagedCondition, AWaitLetsGoOfTheLockUntilNotifiedAndTakesItBack) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // its children start threads to call the manager
  cohort::Manager manager;
  auto ready = manager.condition();
  auto count = manager.value<int>(0);
  EXPECT_THROW(ready.notify(), cohort::Error) << "notify without holding the lock";
  EXPECT_THROW(ready.wait(1ms), cohort::Error);

  ready.acquire();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(ready.wait(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  std::thread([ready] { EXPECT_THROW(ready.release(), cohort::Error) << "the lock is held again"; }).join();
  ready.release();

  cohort::Process producer(&produce, ready, count, 5);
  {
    std::unique_lock held(ready);
    producer.start();
    EXPECT_TRUE(ready.wait_for([&] { return count.get() == 5; }, 10s));
  }
  producer.join();
  EXPECT_EQ(producer.exitcode(), 0);
  std::unique_lock held(ready);
  EXPECT_FALSE(ready.wait_for([&] { return count.get() == 6; }, 20ms));
}

TEST(ManagedSemaphore, CountsUnitsAndABoundedOneRefusesAReleaseTooMany) {
  cohort::Manager manager;
  auto slots = manager.semaphore(2);
  EXPECT_TRUE(slots.acquire());
  EXPECT_TRUE(slots.acquire(false));
  EXPECT_FALSE(slots.acquire(false));
  EXPECT_FALSE(slots.acquire(true, 20ms));
  EXPECT_EQ(slots.get_value(), 0);
  auto later = std::async(std::launch::async, [slots] { return slots.acquire(true, 5s); });
  std::this_thread::sleep_for(20ms);
  slots.release();  // from another thread than the waiter's: units are not owned
  EXPECT_TRUE(later.get());
  slots.release(2);
  EXPECT_EQ(slots.get_value(), 2);
  EXPECT_THROW(slots.release(0), std::invalid_argument);

  auto bounded = manager.bounded_semaphore(1);
  {
    std::lock_guard held(bounded);
    EXPECT_EQ(bounded.get_value(), 0);
  }
  EXPECT_THROW(bounded.release(), cohort::Error);
  EXPECT_EQ(bounded.get_value(), 1);
  EXPECT_THROW(manager.semaphore(-1), std::invalid_argument);
}

void set_event(Proxy<managed::Event> event) { event.set(); }

TEST(ManagedEvent, AWaitEndsWhenAnotherProcessSetsIt) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // its child starts threads to call the manager
  cohort::Manager manager;
  auto event = manager.event();
  EXPECT_FALSE(event.is_set());
  EXPECT_FALSE(event.wait(20ms));
  cohort::Process setter(&set_event, event);
  setter.start();
  EXPECT_TRUE(event.wait(10s));
  setter.join();
  EXPECT_TRUE(event.is_set());
  EXPECT_TRUE(event.wait());
  event.clear();
  EXPECT_FALSE(event.is_set());
}

std::uint32_t meet(Proxy<managed::Barrier> barrier) { return barrier.wait(10s); }

void wait_and_die(Proxy<managed::Barrier> barrier) {
  std::thread([barrier] {
    while (barrier.n_waiting() < 2) std::this_thread::sleep_for(1ms);  // this party waits too
    ::_exit(4);
  }).detach();
  barrier.wait();
}

TEST(ManagedBarrier, PartiesMeetAndATimeoutOrADeadPartyBreaksTheRound) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // its children start threads to call the manager
  cohort::Manager manager;
  auto barrier = manager.barrier(3);
  EXPECT_EQ(barrier.parties(), 3u);
  {
    cohort::ProcessPoolExecutor pool(2);  // proxies reach pool workers too
    auto first = pool.submit(&meet, barrier);
    auto second = pool.submit(&meet, barrier);
    const auto mine = barrier.wait(10s);
    const std::set<std::uint32_t> indexes{mine, first.get(), second.get()};
    EXPECT_EQ(indexes, (std::set<std::uint32_t>{0, 1, 2}));
  }
  EXPECT_EQ(barrier.n_waiting(), 0u);

  // A party that times out breaks the round for those waiting with it, and for later ones until reset().
  auto other = std::async(std::launch::async, [barrier] { return barrier.wait(10s); });
  std::this_thread::sleep_for(20ms);
  EXPECT_THROW(barrier.wait(20ms), cohort::BrokenBarrierError);
  EXPECT_THROW(other.get(), cohort::BrokenBarrierError);
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW(barrier.wait(), cohort::BrokenBarrierError);
  barrier.reset();
  EXPECT_FALSE(barrier.broken());

  // A party whose client dies mid-wait breaks it too, instead of leaving the others to wait forever.
  auto waiting = std::async(std::launch::async, [barrier] { return barrier.wait(); });
  cohort::Process dying(&wait_and_die, barrier);
  dying.start();
  EXPECT_THROW(waiting.get(), cohort::BrokenBarrierError);
  dying.join();
  EXPECT_EQ(dying.exitcode(), 4);
  barrier.reset();
  auto aborted = std::async(std::launch::async, [barrier] { return barrier.wait(); });
  while (barrier.n_waiting() == 0) std::this_thread::sleep_for(1ms);
  barrier.abort();
  EXPECT_THROW(aborted.get(), cohort::BrokenBarrierError);
  EXPECT_THROW(manager.barrier(0), std::invalid_argument);
}

void scale(Proxy<managed::Array<double>> values, double factor) {
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(values.size()); ++i) values[i] = values.get(i) * factor;
}

TEST(ManagedArray, AFixedSequenceChangedByAChild) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // its children start threads to call the manager
  cohort::Manager manager;
  auto zeros = manager.array<int>(3);
  EXPECT_EQ(zeros.to_vector(), (std::vector<int>{0, 0, 0}));
  auto values = manager.array<double>(std::vector<double>{1.0, 2.0, 3.0});
  cohort::Process child(&scale, values, 2.0);
  child.start();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(values.to_vector(), (std::vector<double>{2.0, 4.0, 6.0}));
  values[-1] = values[0];  // copies the value
  EXPECT_EQ(values.get(2), 2.0);
  EXPECT_EQ(values.size(), 3u);
  EXPECT_THROW(values.get(3), std::out_of_range);
  EXPECT_THROW(values.set(-4, 1.0), std::out_of_range);
  EXPECT_THROW(values.assign({1.0}), std::invalid_argument);
  values.assign({7.0, 8.0, 9.0});
  EXPECT_EQ(static_cast<double>(values[1]), 8.0);
}

void consume(Proxy<managed::JoinableQueue<int>> tasks, Proxy<managed::List<int>> done) {
  for (;;) {
    const int task = tasks.get();
    if (task < 0) {
      tasks.task_done();
      return;
    }
    done.append(task * task);
    tasks.task_done();
  }
}

TEST(ManagedJoinableQueue, JoinWaitsUntilEveryItemPutIsDone) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // its children start threads to call the manager
  cohort::Manager manager;
  auto tasks = manager.joinable_queue<int>();
  auto done = manager.list<int>();
  EXPECT_TRUE(tasks.join(0ms));
  for (int i = 1; i <= 5; ++i) tasks.put(i);
  EXPECT_EQ(tasks.unfinished_tasks(), 5u);
  EXPECT_FALSE(tasks.join(20ms));
  cohort::Process worker(&consume, tasks, done);
  worker.start();
  tasks.put(-1);
  EXPECT_TRUE(tasks.join(10s));
  worker.join();
  EXPECT_EQ(worker.exitcode(), 0);
  auto squares = done.to_vector();
  std::sort(squares.begin(), squares.end());
  EXPECT_EQ(squares, (std::vector<int>{1, 4, 9, 16, 25}));
  EXPECT_THROW(tasks.task_done(), std::invalid_argument);
  EXPECT_EQ(tasks.qsize(), 0u);
}

TEST(ManagedSync, EveryTypeFromACoroutine) {
  cohort::Manager manager;
  auto lock = manager.lock();
  auto ready = manager.condition();
  auto slots = manager.semaphore(1);
  auto event = manager.event();
  auto barrier = manager.barrier(1);
  auto values = manager.array<int>(2);
  auto tasks = manager.joinable_queue<int>();
  cohort::Runtime runtime(1);
  const int total = runtime.run([&]() -> cohort::task<int> {
    int sum = 0;
    sum += co_await lock.async_acquire() ? 1 : 0;
    sum += co_await lock.async_locked() ? 1 : 0;
    co_await lock.async_release();
    co_await ready.async_acquire();
    sum += co_await ready.async_wait(1ms) ? 0 : 1;
    co_await ready.async_notify_all();
    sum += co_await ready.async_wait_for([] { return true; }) ? 1 : 0;
    co_await ready.async_release();
    sum += co_await slots.async_acquire(false) ? 1 : 0;
    co_await slots.async_release();
    co_await event.async_set();
    sum += co_await event.async_wait() ? 1 : 0;
    sum += static_cast<int>(co_await barrier.async_wait()) + 1;
    co_await values.async_set(1, 5);
    sum += co_await values.async_get(-1) - 4;
    co_await tasks.async_put(3);
    sum += co_await tasks.async_get() - 2;
    co_await tasks.async_task_done();
    sum += co_await tasks.async_join() ? 1 : 0;
    co_return sum;
  }());
  EXPECT_EQ(total, 10);
}

}  // namespace
