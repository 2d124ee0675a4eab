// Supervision: restarts behind the same refs, strategies, intensity and escalation, nesting.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "cohort/actor.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/supervisor.hpp"
#include "resource_check.hpp"

namespace {

using namespace std::chrono_literals;

/// A counter that records its incarnations in a log shared with the test (local children only).
class Tally {
 public:
  Tally(int start, std::vector<std::string>* log, std::string label)
      : n_(start), log_(log), label_(std::move(label)) {
    if (log_) log_->push_back(label_ + " built");
  }
  int add(int k) { return n_ += k; }
  int get() const { return n_; }
  int fail(const std::string& why) { throw std::runtime_error(why); }
  void on_stop() {
    if (log_) log_->push_back(label_ + " stopped");
  }

 private:
  int n_;
  std::vector<std::string>* log_;
  std::string label_;
};

class Worker {
 public:
  explicit Worker(long start = 0) : n_(start) {}
  long add(long k) { return n_ += k; }
  int pid() const { return ::getpid(); }
  void crash() { ::raise(SIGKILL); }

 private:
  long n_;
};

class Supervision : public cohort_test::LeavesNothingBehind {};

TEST_F(Supervision, ALocalChildRestartsOnErrorBehindTheSameRef) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Supervisor sup({.strategy = cohort::RestartStrategy::one_for_one, .max_restarts = 3, .within = 5s});
    auto t = sup.spawn<Tally>({.name = "tally", .restart_on_error = true}, 10, nullptr, std::string("t"));
    EXPECT_EQ(co_await t.ask(&Tally::add, 5), 15);
    auto failing = t.call(&Tally::fail, std::string("boom"));
    auto behind = t.call(&Tally::add, 1);  // queued behind the failure: handled by the next incarnation
    EXPECT_THROW(co_await failing.async_get(), std::runtime_error);  // the call keeps its exception
    EXPECT_EQ(co_await behind.async_get(), 11);                       // a fresh Tally(10)
    EXPECT_TRUE(t.alive());
    auto found = cohort::find_actor<Tally>("tally");
    EXPECT_TRUE(found && *found == t);
    sup.stop();
    EXPECT_FALSE(t.alive());
  }());
}

TEST_F(Supervision, WithoutRestartOnErrorAThrowingMethodOnlyFailsItsCall) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Supervisor sup;
    auto t = sup.spawn<Tally>(1, nullptr, std::string("t"));
    co_await t.ask(&Tally::add, 1);
    EXPECT_THROW(co_await t.ask(&Tally::fail, std::string("x")), std::runtime_error);
    EXPECT_EQ(co_await t.ask(&Tally::get), 2);  // not restarted
    sup.stop();
  }());
}

TEST_F(Supervision, OneForAllRestartsTheSiblingsToo) {
  std::vector<std::string> log;
  cohort::run([](std::vector<std::string>& events) -> cohort::task<void> {
    cohort::Supervisor sup({.strategy = cohort::RestartStrategy::one_for_all});
    auto a = sup.spawn<Tally>({.restart_on_error = true}, 0, &events, std::string("a"));
    auto b = sup.spawn<Tally>({.restart_on_error = true}, 100, &events, std::string("b"));
    co_await a.ask(&Tally::add, 1);
    co_await b.ask(&Tally::add, 1);
    EXPECT_THROW(co_await a.ask(&Tally::fail, std::string("a fails")), std::runtime_error);
    EXPECT_EQ(co_await a.ask(&Tally::get), 0);
    EXPECT_EQ(co_await b.ask(&Tally::get), 100);  // b was restarted as well
    sup.stop();
  }(log));
  // b stopped gracefully before its rebuild; the failed a was not stopped, only rebuilt.
  EXPECT_EQ(log, (std::vector<std::string>{"a built", "b built", "a built", "b stopped", "b built", "b stopped",
                                           "a stopped"}));
}

TEST_F(Supervision, RestForOneRestartsTheFailedChildAndThoseAfterIt) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Supervisor sup({.strategy = cohort::RestartStrategy::rest_for_one});
    auto a = sup.spawn<Tally>({.restart_on_error = true}, 0, nullptr, std::string("a"));
    auto b = sup.spawn<Tally>({.restart_on_error = true}, 0, nullptr, std::string("b"));
    auto c = sup.spawn<Tally>({.restart_on_error = true}, 0, nullptr, std::string("c"));
    for (auto* each : {&a, &b, &c}) co_await each->ask(&Tally::add, 7);
    EXPECT_THROW(co_await b.ask(&Tally::fail, std::string("b fails")), std::runtime_error);
    EXPECT_EQ(co_await a.ask(&Tally::get), 7);  // before b: untouched
    EXPECT_EQ(co_await b.ask(&Tally::get), 0);
    EXPECT_EQ(co_await c.ask(&Tally::get), 0);
    sup.stop();
  }());
}

TEST_F(Supervision, TooManyRestartsGiveUpAndJoinRethrowsWhy) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Supervisor sup({.max_restarts = 2, .within = 10s});
    auto t = sup.spawn<Tally>({.restart_on_error = true}, 0, nullptr, std::string("t"));
    for (int i = 0; i < 3; ++i) EXPECT_THROW(co_await t.ask(&Tally::fail, "failure " + std::to_string(i)), std::runtime_error);
    try {
      co_await sup.async_join();
      ADD_FAILURE() << "the supervisor did not give up";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "failure 2");
    }
    EXPECT_TRUE(sup.failed());
    co_await t.async_join();  // its children are stopped
    EXPECT_FALSE(t.alive());
  }());
}

TEST_F(Supervision, ANestedSupervisorThatGivesUpIsRestartedByItsParent) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Supervisor top({.name = "top"});
    auto& inner = top.spawn_supervisor({.max_restarts = 0, .name = "inner"});
    auto t = inner.spawn<Tally>({.restart_on_error = true}, 5, nullptr, std::string("t"));
    co_await t.ask(&Tally::add, 1);
    EXPECT_THROW(co_await t.ask(&Tally::fail, std::string("x")), std::runtime_error);
    // inner gave up at once (no restart allowed); top restarted inner, and so t.
    EXPECT_EQ(co_await t.ask(&Tally::get), 5);
    EXPECT_FALSE(top.failed());
    top.stop();
    EXPECT_FALSE(t.alive());
  }());
}

TEST_F(Supervision, AProcessChildComesBackAndGetsTheCallsQueuedBehindTheCrash) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Supervisor sup({.max_restarts = 3, .within = 5s});
    auto w = sup.spawn_process<Worker>({.name = "worker"}, 0L);
    const int first_pid = co_await w.ask(&Worker::pid);
    EXPECT_EQ(co_await w.ask(&Worker::add, 1L), 1);
    auto crash = w.call(&Worker::crash);
    auto behind = w.call(&Worker::add, 5L);
    auto further = w.call(&Worker::add, 5L);
    EXPECT_THROW(co_await crash.async_get(), cohort::ActorDeadError);
    EXPECT_EQ(co_await behind.async_get(), 5);  // a new Worker(0): nothing lost but the call in flight
    EXPECT_EQ(co_await further.async_get(), 10);
    const int second_pid = co_await w.ask(&Worker::pid);
    EXPECT_NE(first_pid, second_pid);
    EXPECT_TRUE(cohort_test::eventually_gone(first_pid));
    sup.stop();  // on the children's loop it cannot wait: the stop completes while this coroutine awaits
    co_await w.async_join();
    EXPECT_TRUE(cohort_test::eventually_gone(second_pid));
  }());
}

TEST_F(Supervision, AProcessChildThatKeepsDyingMakesTheSupervisorGiveUp) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Supervisor sup({.max_restarts = 1, .within = 10s});
    auto w = sup.spawn_process<Worker>(0L);
    for (int i = 0; i < 2; ++i) EXPECT_THROW(co_await w.ask(&Worker::crash), cohort::ActorDeadError);
    EXPECT_THROW(co_await sup.async_join(), cohort::ActorDeadError);
    co_await w.async_join();
    EXPECT_FALSE(w.alive());
  }());
}

}  // namespace
