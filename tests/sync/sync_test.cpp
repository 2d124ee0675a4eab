// Synchronization between processes and threads: Lock, RLock, Semaphore, BoundedSemaphore, Event,
// Condition, Barrier, and the shared Value and Array. Children get the objects as Process arguments, so
// every test runs under each start method.
#include "cohort/lock.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <ranges>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cohort/barrier.hpp"
#include "cohort/codec.hpp"
#include "cohort/condition.hpp"
#include "cohort/detail/binary_archive.hpp"
#include "cohort/detail/fd_transfer.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/error.hpp"
#include "cohort/event.hpp"
#include "cohort/process.hpp"
#include "cohort/semaphore.hpp"
#include "cohort/shared_value.hpp"
#include "resource_check.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How late a timed wait may return. Never early is checked exactly; late is bounded loosely because the
// suite runs two tests at once on two cores, where the scheduler alone has delayed a wake-up by 36 ms
// (idle, timed waits return within a few milliseconds). What it catches is a deadline not honoured: a wait
// that sleeps its whole timeout again or a fixed poll period past it.
constexpr auto timeout_slack = 100ms;

using cohort_test::entries_in;

/// The shared-memory mappings of this process (memfd regions and /dev/shm files), by name.
std::multiset<std::string> shared_mappings() {
  std::multiset<std::string> found;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    for (const char* kind : {"/memfd:", "/dev/shm/"}) {
      const auto at = line.find(kind);
      if (at != std::string::npos) found.insert(line.substr(at));
    }
  }
  return found;
}

// A child reports what it saw through its exit status: 0 if every check held, 7 otherwise.
void check_in_child(bool ok) {
  if (!ok) std::_Exit(7);
}

void run_to_completion(cohort::Process& p) {
  p.start();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
}

/// Runs `wait` (a timed wait that should time out after `timeout`) and checks that it returned false
/// neither early nor more than timeout_slack late.
template <class Wait>
void expect_times_out(std::chrono::milliseconds timeout, Wait&& wait) {
  const auto start = Clock::now();
  EXPECT_FALSE(wait());
  const auto took = Clock::now() - start;
  EXPECT_GE(took, timeout);
  EXPECT_LT(took, timeout + timeout_slack)
      << std::chrono::duration_cast<std::chrono::microseconds>(took).count() << " us";
}

/// Polls `ready` (a condition another thread or process makes true) until it holds or 10 s passed.
template <class Ready>
bool eventually(Ready&& ready) {
  const auto deadline = Clock::now() + 10s;
  while (!ready()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// --- Lock ------------------------------------------------------------------------------------------------

TEST(Lock, AcquireReleaseAndLocked) {
  cohort::Lock lock;
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.acquire(false));  // not recursive
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

TEST(Lock, ReleasingAnUnlockedLockOrAnotherThreadsLockThrowsError) {
  cohort::Lock lock;
  EXPECT_THROW(lock.release(), cohort::Error);
  lock.acquire();
  std::thread other([&] { EXPECT_THROW(lock.release(), cohort::Error); });
  other.join();
  EXPECT_TRUE(lock.locked());
  lock.release();
}

TEST(Lock, TimedAcquireGivesUpOnTime) {
  cohort::Lock lock;
  lock.acquire();
  std::thread other([&] {
    expect_times_out(50ms, [&] { return lock.acquire(true, 50ms); });
    expect_times_out(30ms, [&] { return lock.try_lock_for(30ms); });
    EXPECT_FALSE(lock.try_lock());
  });
  other.join();
  // Its own holder too blocks on a Lock, until the timeout (Python does the same).
  expect_times_out(20ms, [&] { return lock.acquire(true, 20ms); });
  lock.release();
}

TEST(Lock, WorksWithTheStandardLockGuards) {
  cohort::Lock a;
  cohort::Lock b;
  {
    std::lock_guard hold(a);
    EXPECT_TRUE(a.locked());
  }
  EXPECT_FALSE(a.locked());
  {
    std::unique_lock hold(a, std::defer_lock);
    EXPECT_TRUE(hold.try_lock_for(10ms));
    hold.unlock();
    hold.lock();
    EXPECT_TRUE(a.locked());
  }
  {
    std::scoped_lock both(a, b);
    EXPECT_TRUE(a.locked() && b.locked());
  }
  EXPECT_FALSE(a.locked() || b.locked());
}

TEST(Lock, ExcludesThreadsOfOneProcess) {
  cohort::Lock lock;
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::lock_guard hold(lock);
        counter = counter + 1;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter, 80000);
}

void add_under_lock(cohort::Lock lock, cohort::RawValue<long> counter, int times) {
  for (int i = 0; i < times; ++i) {
    std::lock_guard hold(lock);
    counter.set(counter.get() + 1);  // not atomic as a whole: only the lock keeps increments from being lost
  }
}

TEST(Lock, ExcludesProcesses) {
  cohort::Lock lock;
  cohort::RawValue<long> counter(0);
  cohort::Process a(add_under_lock, lock, counter, 20000);
  cohort::Process b(add_under_lock, lock, counter, 20000);
  a.start();
  b.start();
  add_under_lock(lock, counter, 20000);
  ASSERT_TRUE(a.join(30s) && b.join(30s));
  EXPECT_EQ(a.exitcode(), 0);
  EXPECT_EQ(b.exitcode(), 0);
  EXPECT_EQ(counter.get(), 60000);
}

void lock_and_exit(cohort::Lock lock) {
  lock.acquire();
  ::_exit(0);
}

void lock_and_hang(cohort::Lock lock, cohort::Event held) {
  lock.acquire();
  held.set();
  for (;;) ::pause();
}

TEST(Lock, AHolderThatExitedIsRecoveredWithAWarning) {
  cohort::Lock lock;
  cohort::Process child(lock_and_exit, lock);
  child.start();
  ASSERT_TRUE(child.join(30s));
  EXPECT_TRUE(lock.locked());  // the dead holder's mark is still there
  testing::internal::CaptureStderr();
  const bool acquired = lock.acquire(true, 5s);
  const std::string logged = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(acquired);
  EXPECT_NE(logged.find("ended without releasing"), std::string::npos) << logged;
  lock.release();
  EXPECT_TRUE(lock.acquire(false));  // fully usable again
  lock.release();
}

TEST(Lock, AHolderKilledWhileAnotherWaitsIsRecovered) {
  cohort::Lock lock;
  cohort::Event held;
  cohort::Process child(lock_and_hang, lock, held);
  child.start();
  ASSERT_TRUE(held.wait(30s));
  EXPECT_FALSE(lock.acquire(false));
  bool acquired = false;
  std::thread waiter([&] { acquired = lock.acquire(true, 10s); });  // blocked in the kernel when the kill comes
  child.kill();
  ASSERT_TRUE(child.join(30s));
  waiter.join();
  EXPECT_TRUE(acquired);
  EXPECT_EQ(child.exitcode(), -SIGKILL);
}

TEST(Lock, AThreadThatEndsHoldingItIsRecovered) {
  cohort::Lock lock;
  std::thread([&] { lock.acquire(); }).join();
  EXPECT_TRUE(lock.acquire(true, 5s));
  lock.release();
}

// --- RLock -----------------------------------------------------------------------------------------------

TEST(RLock, IsRecursiveAndOwnedByOneThread) {
  cohort::RLock lock;
  EXPECT_FALSE(lock.is_owned());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire(false));
  EXPECT_TRUE(lock.acquire(true, 1ms));
  EXPECT_EQ(lock.depth(), 3u);
  std::thread other([&] {
    EXPECT_FALSE(lock.is_owned());
    EXPECT_FALSE(lock.acquire(false));
    expect_times_out(30ms, [&] { return lock.acquire(true, 30ms); });
    EXPECT_THROW(lock.release(), cohort::Error);
  });
  other.join();
  lock.release();
  lock.release();
  EXPECT_TRUE(lock.is_owned());
  lock.release();
  EXPECT_FALSE(lock.is_owned());
  EXPECT_THROW(lock.release(), cohort::Error);
  std::thread([&] {
    std::lock_guard hold(lock);
    std::lock_guard again(lock);
    EXPECT_EQ(lock.depth(), 2u);
  }).join();
}

void rlock_twice_and_exit(cohort::RLock lock) {
  lock.acquire();
  lock.acquire();
  ::_exit(0);
}

TEST(RLock, AHolderThatDiedIsRecoveredAtDepthOne) {
  cohort::RLock lock;
  cohort::Process child(rlock_twice_and_exit, lock);
  child.start();
  ASSERT_TRUE(child.join(30s));
  testing::internal::CaptureStderr();
  EXPECT_TRUE(lock.acquire(true, 5s));
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(lock.depth(), 1u);
  lock.release();
  EXPECT_FALSE(lock.is_owned());
}

// --- Semaphore -------------------------------------------------------------------------------------------

TEST(Semaphore, CountsUnits) {
  cohort::Semaphore sem(2);
  EXPECT_EQ(sem.get_value(), 2u);
  EXPECT_TRUE(sem.acquire());
  EXPECT_TRUE(sem.acquire(false));
  EXPECT_FALSE(sem.acquire(false));
  EXPECT_EQ(sem.get_value(), 0u);
  expect_times_out(40ms, [&] { return sem.acquire(true, 40ms); });
  sem.release(3);
  EXPECT_EQ(sem.get_value(), 3u);
  {
    std::lock_guard hold(sem);
    EXPECT_EQ(sem.get_value(), 2u);
  }
  EXPECT_EQ(sem.get_value(), 3u);
  EXPECT_EQ(cohort::Semaphore().get_value(), 1u);
  EXPECT_THROW(cohort::Semaphore(-1), std::invalid_argument);
  EXPECT_THROW(sem.release(0), std::invalid_argument);
}

TEST(Semaphore, ReleaseWakesAsManyWaitingThreads) {
  cohort::Semaphore sem(0);
  std::atomic<int> acquired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      if (sem.acquire(true, 10s)) ++acquired;
    });
  sem.release(2);
  EXPECT_TRUE(eventually([&] { return acquired.load() == 2; }));
  sem.release();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(acquired.load(), 3);
  EXPECT_EQ(sem.get_value(), 0u);
}

void release_units(cohort::Semaphore sem, int n) {
  for (int i = 0; i < n; ++i) sem.release();
}

TEST(Semaphore, ReleasedByAnotherProcess) {
  cohort::Semaphore sem(0);
  cohort::Process child(release_units, sem, 3);
  child.start();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(sem.acquire(true, 10s));
  ASSERT_TRUE(child.join(30s));
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_FALSE(sem.acquire(false));
}

TEST(BoundedSemaphore, ReleasingPastTheInitialValueThrowsError) {
  cohort::BoundedSemaphore sem(2);
  EXPECT_THROW(sem.release(), cohort::Error);
  sem.acquire();
  sem.acquire();
  EXPECT_THROW(sem.release(3), cohort::Error);
  EXPECT_EQ(sem.get_value(), 0u);
  sem.release(2);
  EXPECT_EQ(sem.get_value(), 2u);
  cohort::Semaphore& as_base = sem;  // the bound is in the shared state, not in the C++ type
  EXPECT_THROW(as_base.release(), cohort::Error);
}

// --- Event -----------------------------------------------------------------------------------------------

TEST(Event, SetClearAndWait) {
  cohort::Event event;
  EXPECT_FALSE(event.is_set());
  expect_times_out(40ms, [&] { return event.wait(40ms); });
  event.set();
  EXPECT_TRUE(event.is_set());
  EXPECT_TRUE(event.wait(0ms));
  EXPECT_TRUE(event.wait());
  event.set();  // setting twice changes nothing
  event.clear();
  EXPECT_FALSE(event.is_set());
  EXPECT_FALSE(event.wait(1ms));
}

TEST(Event, WakesEveryWaitingThread) {
  cohort::Event event;
  std::atomic<int> woke{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      if (event.wait(10s)) ++woke;
    });
  event.set();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(woke.load(), 4);
}

void wait_for_event(cohort::Event go, cohort::Value<int> woke) {
  check_in_child(go.wait(20s));
  std::lock_guard hold(woke.get_lock());
  woke.set(woke.get() + 1);
}

TEST(Event, SetByOneProcessWakesOthers) {
  cohort::Event go;
  cohort::Value<int> woke(0);
  std::vector<std::unique_ptr<cohort::Process>> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(std::make_unique<cohort::Process>(wait_for_event, go, woke));
    children.back()->start();
  }
  EXPECT_EQ(woke.get(), 0);
  go.set();
  for (auto& child : children) {
    ASSERT_TRUE(child->join(30s));
    EXPECT_EQ(child->exitcode(), 0);
  }
  EXPECT_EQ(woke.get(), 3);
}

// --- Condition -------------------------------------------------------------------------------------------

TEST(Condition, WaitAndNotifyNeedTheLock) {
  cohort::Condition cond;
  EXPECT_THROW(cond.wait(1ms), cohort::Error);
  EXPECT_THROW(cond.notify(), cohort::Error);
  EXPECT_THROW(cond.notify_all(), cohort::Error);
  std::lock_guard hold(cond);
  cond.notify();  // nobody waits: nothing happens
  cond.notify_all();
}

TEST(Condition, TimedWaitReturnsFalseOnTimeWithTheLockHeld) {
  cohort::Condition cond;
  std::unique_lock hold(cond);
  expect_times_out(40ms, [&] { return cond.wait(40ms); });
  expect_times_out(30ms, [&] { return cond.wait_for([] { return false; }, 30ms); });
  std::thread([&] { EXPECT_FALSE(cond.try_lock()); }).join();
  EXPECT_TRUE(cond.wait_for([] { return true; }, 0ms));
}

/// Threads that wait on `cond` once each; `entered` counts them in under the lock, `woke` after.
struct Waiters {
  cohort::Condition& cond;
  int entered = 0;
  std::atomic<int> woke{0};
  std::vector<std::thread> threads;

  Waiters(cohort::Condition& c, int n) : cond(c) {
    for (int i = 0; i < n; ++i)
      threads.emplace_back([this] {
        std::lock_guard hold(cond);
        ++entered;
        if (cond.wait(10s)) ++woke;
      });
    // Whoever counted itself in under the lock is waiting once the lock is free again.
    EXPECT_TRUE(eventually([&] {
      std::lock_guard hold(cond);
      return entered == n;
    }));
  }
  void join() {
    for (auto& thread : threads) thread.join();
  }
};

TEST(Condition, NotifyWakesAtMostNWaiters) {
  cohort::Condition cond;
  Waiters waiters(cond, 3);
  {
    std::lock_guard hold(cond);
    cond.notify();
  }
  EXPECT_TRUE(eventually([&] { return waiters.woke.load() == 1; }));
  std::this_thread::sleep_for(50ms);  // time in which a second waiter would wake if notify() overshot
  EXPECT_EQ(waiters.woke.load(), 1);
  {
    std::lock_guard hold(cond);
    cond.notify(5);  // only two are left
  }
  waiters.join();
  EXPECT_EQ(waiters.woke.load(), 3);
}

TEST(Condition, NotifyAllWakesEveryWaiter) {
  cohort::Condition cond;
  Waiters waiters(cond, 4);
  {
    std::lock_guard hold(cond);
    cond.notify_all();
  }
  waiters.join();
  EXPECT_EQ(waiters.woke.load(), 4);
}

TEST(Condition, AWaiterArrivingAfterANotifyDoesNotTakeAnEarlierWaitersTurn) {
  cohort::Condition cond;
  Waiters waiters(cond, 1);
  std::unique_lock hold(cond);
  cond.notify();
  // This thread now waits too, before the first waiter ran: the wake-up is not for it.
  expect_times_out(60ms, [&] { return cond.wait(60ms); });
  hold.unlock();
  waiters.join();
  EXPECT_EQ(waiters.woke.load(), 1);
}

TEST(Condition, WaitReleasesEveryLevelOfAnRLockAndRestoresThem) {
  cohort::RLock lock;
  cohort::Condition cond(lock);
  lock.acquire();
  lock.acquire();
  EXPECT_EQ(lock.depth(), 2u);
  std::thread notifier([&] {
    std::lock_guard hold(lock);  // only possible while the waiter has let go of both levels
    cond.notify();
  });
  EXPECT_TRUE(cond.wait(10s));
  notifier.join();
  EXPECT_EQ(lock.depth(), 2u);
  lock.release();
  lock.release();
  EXPECT_THROW(lock.release(), cohort::Error);
}

TEST(Condition, WorksOverAPlainLock) {
  cohort::Lock lock;
  cohort::Condition cond(lock);
  bool ready = false;
  std::thread producer([&] {
    std::lock_guard hold(cond);
    ready = true;
    cond.notify();
  });
  {
    std::unique_lock hold(cond);
    EXPECT_TRUE(lock.locked());
    EXPECT_TRUE(cond.wait_for([&] { return ready; }, 10s));
  }
  producer.join();
  EXPECT_FALSE(lock.locked());
}

void produce_items(cohort::Condition cond, cohort::RawValue<int> items, int n) {
  for (int i = 0; i < n; ++i) {
    std::lock_guard hold(cond);
    items.set(items.get() + 1);
    cond.notify();
  }
}

TEST(Condition, NotifiedByAnotherProcess) {
  cohort::Condition cond;
  cohort::RawValue<int> items(0);
  cohort::Process producer(produce_items, cond, items, 5);
  {
    std::unique_lock hold(cond);
    producer.start();
    EXPECT_TRUE(cond.wait_for([&] { return items.get() == 5; }, 20s));
  }
  ASSERT_TRUE(producer.join(30s));
  EXPECT_EQ(producer.exitcode(), 0);
}

// --- Barrier ---------------------------------------------------------------------------------------------

TEST(Barrier, GivesEachPartyADistinctIndexInEveryRound) {
  cohort::Barrier barrier(4);
  EXPECT_EQ(barrier.parties(), 4u);
  for (int round = 0; round < 5; ++round) {
    std::vector<std::uint32_t> indices(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) threads.emplace_back([&, t] { indices[t] = barrier.wait(10s); });
    EXPECT_TRUE(eventually([&] { return barrier.n_waiting() == 3; }));
    indices[3] = barrier.wait();
    for (auto& thread : threads) thread.join();
    std::ranges::sort(indices);
    EXPECT_EQ(indices, (std::vector<std::uint32_t>{0, 1, 2, 3}));
    EXPECT_EQ(barrier.n_waiting(), 0u);
  }
  EXPECT_EQ(cohort::Barrier(1).wait(), 0u);
  EXPECT_THROW(cohort::Barrier(0), std::invalid_argument);
}

TEST(Barrier, ATimeoutBreaksItForEveryoneUntilReset) {
  cohort::Barrier barrier(3);
  std::thread other([&] { EXPECT_THROW(barrier.wait(10s), cohort::BrokenBarrierError); });
  EXPECT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  const auto start = Clock::now();
  EXPECT_THROW(barrier.wait(40ms), cohort::BrokenBarrierError);
  EXPECT_LT(Clock::now() - start, 40ms + timeout_slack);
  other.join();
  EXPECT_TRUE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_THROW(barrier.wait(), cohort::BrokenBarrierError);
  barrier.reset();
  EXPECT_FALSE(barrier.broken());
  std::thread a([&] { barrier.wait(10s); });
  std::thread b([&] { barrier.wait(10s); });
  EXPECT_NO_THROW(barrier.wait(10s));
  a.join();
  b.join();
}

TEST(Barrier, TheDefaultTimeoutApplies) {
  cohort::Barrier barrier(2, 30ms);
  const auto start = Clock::now();
  EXPECT_THROW(barrier.wait(), cohort::BrokenBarrierError);
  EXPECT_GE(Clock::now() - start, 30ms);
  EXPECT_LT(Clock::now() - start, 30ms + timeout_slack);
}

TEST(Barrier, AbortBreaksWaitersAndLaterCallers) {
  cohort::Barrier barrier(3);
  std::thread waiter([&] { EXPECT_THROW(barrier.wait(10s), cohort::BrokenBarrierError); });
  EXPECT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  barrier.abort();
  waiter.join();
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW(barrier.wait(10s), cohort::BrokenBarrierError);
  barrier.reset();
  EXPECT_FALSE(barrier.broken());
}

TEST(Barrier, ResetBreaksTheRoundInProgressOnly) {
  cohort::Barrier barrier(2);
  std::thread waiter([&] { EXPECT_THROW(barrier.wait(10s), cohort::BrokenBarrierError); });
  EXPECT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  barrier.reset();
  waiter.join();
  EXPECT_FALSE(barrier.broken());
  std::thread next([&] { EXPECT_NO_THROW(barrier.wait(10s)); });
  EXPECT_NO_THROW(barrier.wait(10s));
  next.join();
}

void arrive(cohort::Barrier barrier, cohort::Array<int> indices, int slot) {
  for (int round = 0; round < 3; ++round)
    indices[static_cast<std::size_t>(slot * 3 + round)] = static_cast<int>(barrier.wait(20s));
}

TEST(Barrier, SynchronizesProcesses) {
  cohort::Barrier barrier(4);
  cohort::Array<int> indices(12);
  std::vector<std::unique_ptr<cohort::Process>> children;
  for (int slot = 0; slot < 3; ++slot) {
    children.push_back(std::make_unique<cohort::Process>(arrive, barrier, indices, slot));
    children.back()->start();
  }
  arrive(barrier, indices, 3);
  for (auto& child : children) {
    ASSERT_TRUE(child->join(30s));
    EXPECT_EQ(child->exitcode(), 0);
  }
  for (int round = 0; round < 3; ++round) {
    std::vector<int> seen;
    for (int slot = 0; slot < 4; ++slot) seen.push_back(indices[static_cast<std::size_t>(slot * 3 + round)]);
    std::ranges::sort(seen);
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3})) << "round " << round;
  }
}

// --- Value and Array -------------------------------------------------------------------------------------

struct Point {
  double x;
  double y;
  int tag;
};

TEST(Value, GetSetAndItsLock) {
  cohort::Value<int> zero;
  EXPECT_EQ(zero.get(), 0);
  cohort::Value<double> v(2.5);
  EXPECT_EQ(v.get(), 2.5);
  v.set(-1.25);
  EXPECT_EQ(v.get(), -1.25);
  {
    std::lock_guard hold(v.get_lock());
    v.set(v.get() * 2);  // get and set take the lock again, recursively
    EXPECT_EQ(v.get_lock().depth(), 1u);
  }
  EXPECT_EQ(v.get(), -2.5);
  EXPECT_FALSE(v.get_lock().is_owned());

  cohort::Value<Point> p(Point{1, 2, 3});
  p.set(Point{4, 5, 6});
  EXPECT_EQ(p.get().y, 5);
  p.get_obj().tag = 9;
  EXPECT_EQ(p.get().tag, 9);

  cohort::Value<int> unlocked(7, false);
  EXPECT_EQ(unlocked.get(), 7);
  EXPECT_THROW(unlocked.get_lock(), cohort::Error);
  cohort::RawValue<long> raw(3);
  raw.set(raw.get() + 1);
  EXPECT_EQ(raw.get(), 4);
}

TEST(Value, CopiesShareTheValueAndTheLock) {
  cohort::Value<int> v(1);
  auto copy = v;
  copy.set(5);
  EXPECT_EQ(v.get(), 5);
  std::lock_guard hold(v.get_lock());
  EXPECT_TRUE(copy.get_lock().is_owned());
}

TEST(Value, CanShareAnRLockWithOtherValues) {
  cohort::RLock lock;
  cohort::Value<int> a(1, lock);
  cohort::Value<int> b(2, lock);
  std::lock_guard hold(a.get_lock());
  EXPECT_TRUE(b.get_lock().is_owned());
  EXPECT_TRUE(lock.is_owned());
  std::thread([&] { EXPECT_FALSE(b.get_lock().try_lock()); }).join();
}

void increment_value(cohort::Value<int> counter, int times) {
  auto& lock = counter.get_lock();
  for (int i = 0; i < times; ++i) {
    std::lock_guard hold(lock);
    counter.set(counter.get() + 1);
  }
}

TEST(Value, IncrementsUnderItsLockFromTwoProcessesAllCount) {
  cohort::Value<int> counter(0);
  cohort::Process a(increment_value, counter, 50000);
  cohort::Process b(increment_value, counter, 50000);
  a.start();
  b.start();
  ASSERT_TRUE(a.join(30s) && b.join(30s));
  EXPECT_EQ(a.exitcode(), 0);
  EXPECT_EQ(b.exitcode(), 0);
  EXPECT_EQ(counter.get(), 100000);
}

TEST(Value, IncrementsFromThreadsAllCount) {
  cohort::Value<long> counter(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::lock_guard hold(counter.get_lock());
        counter.get_obj() += 1;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.get(), 80000);
}

TEST(Array, ConstructionIndexingAndIteration) {
  cohort::Array<int> zeros(4);
  EXPECT_EQ(zeros.size(), 4u);
  EXPECT_EQ(zeros.to_vector(), (std::vector<int>{0, 0, 0, 0}));
  cohort::Array<int> listed{1, 2, 3};
  EXPECT_EQ(listed.size(), 3u);
  listed[1] = 20;
  EXPECT_EQ(std::accumulate(listed.begin(), listed.end(), 0), 24);
  EXPECT_EQ(listed.at(2), 3);
  EXPECT_THROW(listed.at(3), std::out_of_range);
  cohort::Array<double> ranged(std::views::iota(0, 5));
  EXPECT_EQ(ranged.to_vector(), (std::vector<double>{0, 1, 2, 3, 4}));
  cohort::Array<long> from_vector(std::vector<long>{7, 8});
  EXPECT_EQ(from_vector[1], 8);
  cohort::Array<int> filtered(std::views::iota(0, 10) | std::views::filter([](int i) { return i % 3 == 0; }));
  EXPECT_EQ(filtered.to_vector(), (std::vector<int>{0, 3, 6, 9}));
  cohort::Array<char> empty(0);
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.begin(), empty.end());

  auto copy = listed;
  copy[0] = -1;
  EXPECT_EQ(listed[0], -1);
  std::lock_guard hold(listed.get_lock());
  EXPECT_TRUE(copy.get_lock().is_owned());
  EXPECT_THROW(cohort::Array<int>(3, false).get_lock(), cohort::Error);
}

void negate_all(cohort::Value<double> number, cohort::Array<int> values, cohort::RawArray<short> raw) {
  number.set(3.1415927);
  std::lock_guard hold(values.get_lock());
  for (auto& v : values) v = -v;
  for (auto& v : raw) v = static_cast<short>(v * 2);
}

TEST(Array, ChangedInPlaceByAChild) {
  cohort::Value<double> number(0.0);
  cohort::Array<int> values(std::views::iota(0, 10));
  cohort::RawArray<short> raw{1, 2, 3};
  cohort::Process child(negate_all, number, values, raw);
  run_to_completion(child);
  EXPECT_EQ(number.get(), 3.1415927);
  EXPECT_EQ(values.to_vector(), (std::vector<int>{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}));
  EXPECT_EQ(raw.to_vector(), (std::vector<short>{2, 4, 6}));
}

// --- Crossing as serialized data -------------------------------------------------------------------------

/// Serializes `object` as a Process argument under spawn would, and loads it back: the copy must share
/// the original's state.
template <class T>
T round_trip(const T& object) {
  std::vector<cohort::detail::UniqueFd> fds;
  std::string bytes;
  {
    cohort::detail::FdTransferScope scope(fds);
    cohort::detail::BinaryWriter archive(bytes);
    archive(object);
  }
  cohort::detail::FdTransferScope scope(fds);
  auto loaded = cohort::detail::construct_for_loading<T>();
  cohort::detail::BinaryReader archive(bytes);
  archive(*loaded);
  EXPECT_EQ(archive.remaining(), 0u);
  return *loaded;
}

TEST(SyncSerialization, RoundTripsShareTheState) {
  cohort::Lock lock;
  auto lock_copy = round_trip(lock);
  // Each lock is taken and released through one mapping: here both mappings are in one process, at
  // two addresses, which ThreadSanitizer would take for two mutexes.
  lock.acquire();
  EXPECT_TRUE(lock_copy.locked());
  EXPECT_FALSE(lock_copy.acquire(false));
  lock.release();
  EXPECT_FALSE(lock_copy.locked());

  cohort::RLock rlock;
  auto rlock_copy = round_trip(rlock);
  rlock.acquire();
  EXPECT_TRUE(rlock_copy.is_owned());
  rlock.release();
  EXPECT_FALSE(rlock_copy.is_owned());

  cohort::BoundedSemaphore sem(1);
  auto sem_copy = round_trip(sem);
  sem.acquire();
  EXPECT_EQ(sem_copy.get_value(), 0u);
  sem_copy.release();
  EXPECT_THROW(sem_copy.release(), cohort::Error);

  cohort::Event event;
  auto event_copy = round_trip(event);
  event.set();
  EXPECT_TRUE(event_copy.is_set());

  cohort::Condition cond;
  auto cond_copy = round_trip(cond);
  {
    std::lock_guard hold(cond);
    cond_copy.notify();  // the copy's lock is the same lock, held by this thread
  }

  cohort::Barrier barrier(2, 10s);
  auto barrier_copy = round_trip(barrier);
  EXPECT_EQ(barrier_copy.parties(), 2u);
  std::thread other([&] { barrier_copy.wait(); });
  EXPECT_NO_THROW(barrier.wait());
  other.join();

  cohort::Value<int> value(1);
  auto value_copy = round_trip(value);
  value.set(9);
  EXPECT_EQ(value_copy.get(), 9);
  std::lock_guard hold(value.get_lock());
  EXPECT_TRUE(value_copy.get_lock().is_owned());

  cohort::RLock shared;
  cohort::Value<int> with_shared(2, shared);
  auto with_shared_copy = round_trip(with_shared);
  std::lock_guard hold_shared(shared);
  EXPECT_TRUE(with_shared_copy.get_lock().is_owned());

  cohort::Array<int> array{1, 2, 3};
  auto array_copy = round_trip(array);
  array[2] = 30;
  EXPECT_EQ(array_copy.to_vector(), (std::vector<int>{1, 2, 30}));
  cohort::RawArray<char> raw_array(5);
  auto raw_array_copy = round_trip(raw_array);
  raw_array[4] = 'x';
  EXPECT_EQ(raw_array_copy.at(4), 'x');
  cohort::RawValue<float> raw_value(1.5f);
  EXPECT_EQ(round_trip(raw_value).get(), 1.5f);
}

TEST(SyncSerialization, OutsideATransferTheyRefuseWithSerializationError) {
  EXPECT_THROW(cohort::dumps(cohort::Lock()), cohort::SerializationError);
  EXPECT_THROW(cohort::dumps(cohort::Value<int>(1)), cohort::SerializationError);
}

// --- Resources -------------------------------------------------------------------------------------------

void use_everything(cohort::Lock lock, cohort::RLock rlock, cohort::Semaphore sem, cohort::Event event,
                    cohort::Condition cond, cohort::Barrier barrier, cohort::Value<int> value,
                    cohort::Array<int> array) {
  { std::lock_guard hold(lock); }
  { std::lock_guard hold(rlock); }
  sem.release();
  event.set();
  {
    std::lock_guard hold(cond);
    cond.notify();
  }
  check_in_child(barrier.wait(20s) < 2);
  value.set(value.get() + 1);
  array[0] = 1;
}

// Nothing of theirs can appear in /dev/shm (memfd regions have no name there); what they hold is
// descriptors and mappings, which must all be gone once the objects are.
TEST(SyncResources, LeaveNoDescriptorsNorMappingsBehind) {
  const auto fds_before = entries_in("/proc/self/fd");
  const auto mappings_before = shared_mappings();
  {
    cohort::Lock lock;
    cohort::RLock rlock;
    cohort::Semaphore sem(0);
    cohort::Event event;
    cohort::Condition cond;
    cohort::Barrier barrier(2);
    cohort::Value<int> value(0);
    cohort::Array<int> array(3);
    cohort::Process child(use_everything, lock, rlock, sem, event, cond, barrier, value, array);
    child.start();
    EXPECT_LT(barrier.wait(20s), 2u);
    ASSERT_TRUE(child.join(30s));
    EXPECT_EQ(child.exitcode(), 0);
    EXPECT_TRUE(sem.acquire(false));
    EXPECT_TRUE(event.is_set());
    EXPECT_EQ(value.get(), 1);
    EXPECT_EQ(array[0], 1);
  }
  EXPECT_EQ(entries_in("/proc/self/fd"), fds_before);
  EXPECT_EQ(shared_mappings(), mappings_before);
}

}  // namespace
