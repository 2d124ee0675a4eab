#include "cohort/actor.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cohort/gather.hpp"
#include "cohort/run_in_executor.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/thread_pool_executor.hpp"

namespace {

using namespace std::chrono_literals;

class Counter {
 public:
  explicit Counter(int start = 0) : n_(start) {}
  int add(int k) { return n_ += k; }
  int get() const { return n_; }
  cohort::task<int> add_later(int k, std::chrono::milliseconds delay) {
    co_await cohort::sleep(delay);
    co_return n_ += k;
  }
  void fail(const std::string& why) { throw std::invalid_argument(why); }
  cohort::task<void> fail_later(std::string why) {
    co_await cohort::sleep(1ms);
    throw std::out_of_range(why);
  }
  int take(std::unique_ptr<int> p) { return n_ += *p; }

 private:
  int n_;
};

TEST(Actor, AskCallsPlainConstAndCoroutineMethods) {
  cohort::run([]() -> cohort::task<void> {
    auto c = cohort::spawn_actor<Counter>(10);
    EXPECT_EQ(co_await c.ask(&Counter::add, 5), 15);
    EXPECT_EQ(co_await c.ask(&Counter::get), 15);
    EXPECT_EQ(co_await c.ask(&Counter::add_later, 2, 5ms), 17);
    EXPECT_EQ(co_await c.ask([](Counter& self) { return self.get() * 2; }), 34);
    EXPECT_EQ(co_await c.ask([](auto& self, int k) { return self.add(k); }, 3), 20);
    EXPECT_EQ(co_await c.ask(&Counter::take, std::make_unique<int>(4)), 24);
    co_await c.stop();
  }());
}

TEST(Actor, ExceptionsFailOnlyTheirCallAndKeepTheirType) {
  cohort::run([]() -> cohort::task<void> {
    auto c = cohort::spawn_actor<Counter>();
    EXPECT_THROW(co_await c.ask(&Counter::fail, std::string("bad")), std::invalid_argument);
    EXPECT_THROW(co_await c.ask(&Counter::fail_later, std::string("later")), std::out_of_range);
    EXPECT_EQ(co_await c.ask(&Counter::add, 1), 1);  // the actor goes on
    c.tell(&Counter::fail, std::string("logged, not thrown"));
    EXPECT_EQ(co_await c.ask(&Counter::get), 1);
  }());
}

TEST(Actor, TellIsFifoPerSender) {
  struct Log {
    std::vector<int> seen;
    void push(int v) { seen.push_back(v); }
    std::vector<int> all() const { return seen; }
  };
  cohort::run([]() -> cohort::task<void> {
    auto log = cohort::spawn_actor<Log>();
    for (int i = 0; i < 1000; ++i) log.tell(&Log::push, i);
    for (int i = 1000; i < 1100; ++i) co_await log.async_tell(&Log::push, i);
    std::vector<int> expected(1100);
    for (int i = 0; i < 1100; ++i) expected[i] = i;
    EXPECT_EQ(co_await log.ask(&Log::all), expected);
  }());
}

/// Records how many of its methods run at once.
class Exclusive {
 public:
  explicit Exclusive(std::atomic<int>& peak) : peak_(peak) {}
  cohort::task<int> step() {
    const int now = ++inside_;
    if (now > peak_) peak_ = now;
    co_await cohort::sleep(1ms);
    co_await cohort::sleep(1ms);
    --inside_;
    co_return ++steps_;
  }

 private:
  std::atomic<int>& peak_;
  std::atomic<int> inside_{0};
  int steps_ = 0;
};

TEST(Actor, OneWholeMethodAtATimeAcrossItsAwaits) {
  std::atomic<int> peak{0};
  cohort::run([](std::atomic<int>& p) -> cohort::task<void> {
    auto a = cohort::spawn_actor<Exclusive>(p);
    std::vector<cohort::task<int>> asks;
    for (int i = 0; i < 20; ++i) asks.push_back(a.ask(&Exclusive::step));
    const auto results = co_await cohort::gather(std::move(asks));
    std::unordered_set<int> distinct(results.begin(), results.end());
    EXPECT_EQ(distinct.size(), 20u);
  }(peak));
  EXPECT_EQ(peak.load(), 1);
}

TEST(Actor, NeverOnTwoThreadsAndDifferentActorsInParallel) {
  struct Busy {
    std::atomic<int>& peak;
    std::atomic<int> inside{0};
    void spin() {
      const int now = ++inside;
      if (now > peak) peak = now;
      const auto until = std::chrono::steady_clock::now() + 20ms;
      while (std::chrono::steady_clock::now() < until) {
      }
      --inside;
    }
  };
  std::atomic<int> peak_a{0};
  std::atomic<int> peak_b{0};
  cohort::Runtime runtime(2);
  const auto elapsed = runtime.run([](std::atomic<int>& pa, std::atomic<int>& pb) -> cohort::task<std::chrono::nanoseconds> {
    auto a = cohort::spawn_actor<Busy>(pa);
    auto b = cohort::spawn_actor<Busy>(pb);
    const auto start = std::chrono::steady_clock::now();
    std::vector<cohort::task<void>> asks;
    for (int i = 0; i < 10; ++i) {
      asks.push_back(a.ask(&Busy::spin));
      asks.push_back(b.ask(&Busy::spin));
    }
    co_await cohort::gather(std::move(asks));
    co_return std::chrono::steady_clock::now() - start;
  }(peak_a, peak_b));
  EXPECT_EQ(peak_a.load(), 1);
  EXPECT_EQ(peak_b.load(), 1);
  // 20 x 20 ms of work: 400 ms on one thread, about 200 ms on two.
  EXPECT_LT(elapsed, 380ms);
}

TEST(Actor, CallWorksFromAPlainThread) {
  cohort::Runtime runtime;
  std::atomic<int> result{0};
  runtime.run([](std::atomic<int>& out) -> cohort::task<void> {
    auto c = cohort::spawn_actor<Counter>(1);
    std::thread caller([c, &out] {
      cohort::Future<int> f = c.call(&Counter::add, 41);
      out = f.get(5s);
      c.tell(&Counter::add, 1);
    });
    while (out == 0) co_await cohort::sleep(1ms);
    caller.join();
    EXPECT_EQ(co_await c.ask(&Counter::get), 43);
  }(result));
  EXPECT_EQ(result.load(), 42);
}

TEST(Actor, TheDefaultRuntimeLeavesSigtermToEndTheProgram) {
  // A program that never runs a Runtime itself: its actors live on cohort's background loop, which
  // must not take SIGTERM for itself (the program would go on, its calls to actors never answered).
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    auto c = cohort::spawn_actor<Counter>(1);  // outside any run: on the default runtime
    const char answer = static_cast<char>(c.call(&Counter::add, 1).get(5s));
    if (::write(ready[1], &answer, 1) != 1) ::_exit(3);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char answer = 0;
  EXPECT_EQ(::read(ready[0], &answer, 1), 1);
  ::close(ready[0]);
  EXPECT_EQ(answer, 2);
  ::kill(child, SIGTERM);
  int status = 0;
  pid_t reaped = 0;
  for (int i = 0; i < 500 && (reaped = ::waitpid(child, &status, WNOHANG)) == 0; ++i) std::this_thread::sleep_for(10ms);
  if (reaped == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL() << "the program went on after SIGTERM";
  }
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "status " << status;
}

TEST(Actor, BoundedMailboxTellThrowsFullAndAsyncTellWaits) {
  struct Slow {
    int handled = 0;
    cohort::task<void> work() {
      co_await cohort::sleep(2ms);
      ++handled;
    }
    int count() const { return handled; }
  };
  cohort::run([]() -> cohort::task<void> {
    auto s = cohort::spawn_actor<Slow>({.name = "", .mailbox_size = 2});
    s.tell(&Slow::work);
    s.tell(&Slow::work);
    // The drain has not run yet: both are still queued.
    EXPECT_THROW(s.tell(&Slow::work), cohort::Full);
    EXPECT_THROW((void)s.call(&Slow::work), cohort::Full);
    for (int i = 0; i < 6; ++i) co_await s.async_tell(&Slow::work);  // waits for room each time
    EXPECT_EQ(co_await s.ask(&Slow::count), 8);
  }());
}

TEST(Actor, AskForTimesOut) {
  cohort::run([]() -> cohort::task<void> {
    auto c = cohort::spawn_actor<Counter>();
    EXPECT_THROW(co_await c.ask_for(20ms, &Counter::add_later, 1, 200ms), cohort::TimeoutError);
    // The timed-out method still runs to its end; the next message waits for it.
    EXPECT_EQ(co_await c.ask_for(5s, &Counter::add, 1), 2);
  }());
}

TEST(Actor, StopHandlesWhatIsQueuedThenRunsOnStopThenRefuses) {
  struct Hooks {
    std::vector<std::string>& events;
    void on_start() { events.push_back("start"); }
    void on_stop() { events.push_back("stop"); }
    void note(std::string what) { events.push_back(std::move(what)); }
  };
  std::vector<std::string> events;
  cohort::run([](std::vector<std::string>& ev) -> cohort::task<void> {
    auto h = cohort::spawn_actor<Hooks>(ev);
    EXPECT_TRUE(h.alive());
    h.tell(&Hooks::note, std::string("a"));
    h.tell(&Hooks::note, std::string("b"));
    co_await h.stop();
    EXPECT_FALSE(h.alive());
    EXPECT_THROW(h.tell(&Hooks::note, std::string("late")), cohort::ActorDeadError);
    EXPECT_THROW((void)h.call(&Hooks::note, std::string("late")), cohort::ActorDeadError);
    EXPECT_THROW(co_await h.ask(&Hooks::note, std::string("late")), cohort::ActorDeadError);
    co_await h.async_join();  // already stopped: returns at once
    co_await h.stop();  // idempotent
  }(events));
  EXPECT_EQ(events, (std::vector<std::string>{"start", "a", "b", "stop"}));
}

TEST(Actor, ActorDeadErrorNamesTheActor) {
  cohort::run([]() -> cohort::task<void> {
    auto c = cohort::spawn_actor<Counter>({.name = "bank"}, 0);
    co_await c.stop();
    try {
      c.tell(&Counter::add, 1);
      ADD_FAILURE() << "no ActorDeadError";
    } catch (const cohort::ActorDeadError& e) {
      EXPECT_NE(std::string(e.what()).find("'bank'"), std::string::npos) << e.what();
    }
  }());
}

TEST(Actor, StopFromItsOwnMethodEndsAfterThatMethod) {
  struct Quitter {
    cohort::ActorRef<Quitter>* self = nullptr;
    cohort::task<int> quit() {
      co_await self->stop();  // returns at once: the actor stops once this method ends
      co_return 7;
    }
  };
  cohort::run([]() -> cohort::task<void> {
    auto q = cohort::spawn_actor<Quitter>();
    co_await q.ask([&q](Quitter& self) { self.self = &q; });
    EXPECT_EQ(co_await q.ask(&Quitter::quit), 7);
    co_await q.async_join();
    EXPECT_FALSE(q.alive());
  }());
}

TEST(Actor, OnStartFailureStopsTheActor) {
  struct Broken {
    cohort::task<void> on_start() {
      co_await cohort::sleep(1ms);
      throw std::runtime_error("no database");
    }
    int get() const { return 1; }
  };
  cohort::run([]() -> cohort::task<void> {
    auto b = cohort::spawn_actor<Broken>();
    try {
      (void)co_await b.ask(&Broken::get);
      ADD_FAILURE() << "no ActorDeadError";
    } catch (const cohort::ActorDeadError& e) {
      EXPECT_NE(std::string(e.what()).find("no database"), std::string::npos) << e.what();
    }
    co_await b.async_join();
  }());
}

TEST(Actor, FindActorByNameAndType) {
  cohort::run([]() -> cohort::task<void> {
    auto c = cohort::spawn_actor<Counter>({.name = "counter-find"}, 3);
    auto found = cohort::find_actor<Counter>("counter-find");
    if (!found) {
      ADD_FAILURE() << "find_actor did not find 'counter-find'";
      co_return;
    }
    EXPECT_EQ(*found, c);
    EXPECT_EQ(co_await found->ask(&Counter::get), 3);
    EXPECT_FALSE(cohort::find_actor<Exclusive>("counter-find").has_value());
    EXPECT_FALSE(cohort::find_actor<Counter>("nobody").has_value());
    EXPECT_THROW(cohort::spawn_actor<Counter>({.name = "counter-find"}, 0), std::invalid_argument);
    co_await c.stop();
    EXPECT_FALSE(cohort::find_actor<Counter>("counter-find").has_value());
    auto again = cohort::spawn_actor<Counter>({.name = "counter-find"}, 9);  // the name is free again
    EXPECT_EQ(co_await cohort::find_actor<Counter>("counter-find")->ask(&Counter::get), 9);
    co_await again.stop();
  }());
}

TEST(Actor, RefsAreHashableComparableAndNamed) {
  cohort::run([]() -> cohort::task<void> {
    auto a = cohort::spawn_actor<Counter>();
    auto b = cohort::spawn_actor<Counter>();
    const auto a2 = a;
    EXPECT_EQ(a, a2);
    EXPECT_NE(a, b);
    EXPECT_TRUE(a < b || b < a);
    std::unordered_set<cohort::ActorRef<Counter>> set{a, a2, b};
    EXPECT_EQ(set.size(), 2u);
    EXPECT_EQ(a.name().rfind("Counter-", 0), 0u) << a.name();
    EXPECT_NE(a.name(), b.name());
    co_return;
  }());
}

TEST(Actor, CoroutineMethodOffloadsToAThreadPool) {
  struct Primes {
    cohort::ThreadPoolExecutor& pool;
    cohort::task<long> count_below(long n) {
      co_return co_await cohort::run_in_executor(pool, [](long limit) {
        long count = 0;
        for (long i = 2; i < limit; ++i) {
          bool prime = true;
          for (long d = 2; d * d <= i; ++d)
            if (i % d == 0) {
              prime = false;
              break;
            }
          count += prime;
        }
        return count;
      }, n);
    }
  };
  cohort::ThreadPoolExecutor pool(2);
  const long count = cohort::run([](cohort::ThreadPoolExecutor& p) -> cohort::task<long> {
    auto primes = cohort::spawn_actor<Primes>(p);
    co_return co_await primes.ask(&Primes::count_below, 10'000L);
  }(pool));
  EXPECT_EQ(count, 1229);
}

TEST(Actor, DestroyingTheRuntimeStopsItsActorsAndFailsWhatWasQueued) {
  struct Watched {
    std::atomic<bool>& stopped;
    void on_stop() { stopped = true; }
    int ping() const { return 1; }
    cohort::task<int> forever() {
      co_await cohort::sleep(1h);
      co_return 0;
    }
  };
  std::atomic<bool> stopped{false};
  std::vector<cohort::Future<int>> queued;
  cohort::Future<int> in_flight;
  {
    cohort::Runtime runtime;
    auto w = cohort::spawn_actor<Watched>({.runtime = &runtime}, stopped);
    runtime.run([](cohort::ActorRef<Watched> actor, cohort::Future<int>& flight) -> cohort::task<void> {
      EXPECT_EQ(co_await actor.ask(&Watched::ping), 1);
      flight = actor.call(&Watched::forever);
      co_await cohort::sleep(5ms);  // the method is now suspended in its sleep
    }(w, in_flight));
    for (int i = 0; i < 3; ++i) queued.push_back(w.call(&Watched::ping));  // the loop is not running
  }
  EXPECT_TRUE(stopped.load());
  for (auto& f : queued) EXPECT_THROW(f.get(1s), cohort::ActorDeadError);
  EXPECT_THROW(in_flight.get(1s), cohort::ActorDeadError);
}

TEST(Actor, SpawnedOutsideAnyRuntimeRunsOnTheDefaultRuntime) {
  auto c = cohort::spawn_actor<Counter>(5);
  EXPECT_EQ(c.call(&Counter::add, 1).get(5s), 6);
  c.tell(&Counter::add, 1);
  EXPECT_EQ(c.call(&Counter::get).get(5s), 7);
  // Awaited from a coroutine on another Runtime.
  EXPECT_EQ(cohort::run([](cohort::ActorRef<Counter> ref) -> cohort::task<int> { co_return co_await ref.ask(&Counter::get); }(c)), 7);
  cohort::run(c.stop());  // awaited from a coroutine of another Runtime
  c.join();
  EXPECT_FALSE(c.alive());
}

TEST(Actor, JoinOnTheActorsOwnLoopIsRefused) {
  cohort::run([]() -> cohort::task<void> {
    auto c = cohort::spawn_actor<Counter>();
    EXPECT_THROW(c.join(), std::logic_error);
    co_await c.stop();
  }());
}

}  // namespace
