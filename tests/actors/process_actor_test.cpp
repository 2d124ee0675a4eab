// Process actors under every start method (ctest runs this binary once per method).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cohort/actor.hpp"
#include "cohort/connection.hpp"
#include "cohort/process.hpp"
#include "cohort/remote_exception.hpp"
#include "cohort/run_in_executor.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/thread_pool_executor.hpp"
#include "resource_check.hpp"
#include "sanitizers.hpp"

namespace {

using namespace std::chrono_literals;

class Account {
 public:
  explicit Account(long balance = 0, std::string stop_file = {}) : balance_(balance), stop_file_(std::move(stop_file)) {
    if (balance < 0) throw std::invalid_argument("a negative opening balance");
  }
  long deposit(long amount) { return balance_ += amount; }
  long balance() const { return balance_; }
  std::string owner(const std::string& prefix) const { return prefix + std::to_string(::getpid()); }
  int pid() const { return ::getpid(); }
  void overdraw(long amount) {
    if (amount > balance_) throw std::out_of_range("overdrawn by " + std::to_string(amount - balance_));
    balance_ -= amount;
  }
  cohort::task<long> interest_later(long percent) {
    co_await cohort::sleep(2ms);
    // A coroutine method in the worker may use pools there.
    balance_ = co_await cohort::to_thread([](long b, long p) { return b + b * p / 100; }, balance_, percent);
    co_return balance_;
  }
  void crash(int signal_number) { ::raise(signal_number); }
  void exit_now(int code) { std::_Exit(code); }
  void on_stop() {
    if (!stop_file_.empty()) std::ofstream(stop_file_) << "stopped at " << balance_;
  }

 private:
  long balance_;
  std::string stop_file_;
};

/// Not serializable: cereal has no serialize() for it.
struct Opaque {
  int value = 0;
};

class Takes {
 public:
  int take(Opaque o) { return o.value; }
  Opaque give() { return {}; }
};

using cohort_test::eventually_gone;
using cohort_test::process_gone;

/// Every test leaves no descriptor, shared-memory segment or zombie behind.
class ProcessActor : public cohort_test::LeavesNothingBehind {
 protected:
  void SetUp() override {
    LeavesNothingBehind::SetUp();
    // A process actor's worker is forked from its launcher thread, with the caller's threads running,
    // and then starts threads of its own.
    COHORT_SKIP_THREADED_FORK_UNDER_TSAN();
  }
};

TEST_F(ProcessActor, AsksTellsAndCallsCrossToTheWorker) {
  cohort::run([]() -> cohort::task<void> {
    auto account = cohort::spawn_process_actor<Account>(100L);
    const int worker = co_await account.ask(&Account::pid);
    EXPECT_NE(worker, ::getpid());
    EXPECT_EQ(co_await account.ask(&Account::deposit, 5L), 105);
    account.tell(&Account::deposit, 10L);
    EXPECT_EQ(co_await account.ask(&Account::balance), 115);
    EXPECT_EQ(co_await account.call(&Account::deposit, 1L).async_get(), 116);
    EXPECT_EQ(co_await account.ask(&Account::owner, std::string("pid ")), "pid " + std::to_string(worker));
    EXPECT_EQ(co_await account.ask(&Account::interest_later, 10L), 127);
    EXPECT_EQ(co_await account.ask_for(5s, &Account::balance), 127);
    co_await account.stop();
    EXPECT_FALSE(account.alive());
    EXPECT_TRUE(eventually_gone(worker));
  }());
}

TEST_F(ProcessActor, ExceptionsKeepTheirTypeAndTheRemoteTrace) {
  cohort::run([]() -> cohort::task<void> {
    auto account = cohort::spawn_process_actor<Account>(10L);
    try {
      co_await account.ask(&Account::overdraw, 50L);
      ADD_FAILURE() << "no exception";
    } catch (const std::out_of_range& e) {
      EXPECT_STREQ(e.what(), "overdrawn by 40");
      const auto trace = cohort::remote_traceback(e);
      EXPECT_TRUE(trace && !trace->empty());
    }
    EXPECT_EQ(co_await account.ask(&Account::balance), 10);  // the actor goes on
    co_await account.stop();
  }());
}

TEST_F(ProcessActor, TheConstructorsExceptionComesBackFromSpawn) {
  EXPECT_THROW(cohort::run([]() -> cohort::task<void> {
                 auto account = cohort::spawn_process_actor<Account>(-1L);
                 co_await account.stop();
               }()),
               std::invalid_argument);
}

TEST_F(ProcessActor, ACrashFailsTheCallInFlightWithTheSignalAndLaterOnes) {
  cohort::run([]() -> cohort::task<void> {
    auto account = cohort::spawn_process_actor<Account>({.name = "crashing"}, 1L);
    const int worker = co_await account.ask(&Account::pid);
    const auto start = std::chrono::steady_clock::now();
    try {
      co_await account.ask(&Account::crash, SIGKILL);
      ADD_FAILURE() << "no ActorDeadError";
    } catch (const cohort::ActorDeadError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("'crashing'"), std::string::npos) << what;
      EXPECT_NE(what.find("SIGKILL"), std::string::npos) << what;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_FALSE(account.alive());
    EXPECT_THROW(co_await account.ask(&Account::balance), cohort::ActorDeadError);
    EXPECT_THROW(account.tell(&Account::balance), cohort::ActorDeadError);
    EXPECT_TRUE(eventually_gone(worker, 1s));  // reaped: no zombie
    co_await account.async_join();
  }());
}

TEST_F(ProcessActor, AnExitNamesItsCode) {
  cohort::run([]() -> cohort::task<void> {
    auto account = cohort::spawn_process_actor<Account>(1L);
    try {
      co_await account.ask(&Account::exit_now, 7);
      ADD_FAILURE() << "no ActorDeadError";
    } catch (const cohort::ActorDeadError& e) {
      EXPECT_NE(std::string(e.what()).find("exited with code 7"), std::string::npos) << e.what();
    }
  }());
}

TEST_F(ProcessActor, StopRunsOnStopInTheWorker) {
  const std::string file = ::testing::TempDir() + "cohort_process_actor_stop_" + std::to_string(::getpid());
  std::remove(file.c_str());
  cohort::run([](std::string path) -> cohort::task<void> {
    auto account = cohort::spawn_process_actor<Account>(3L, path);
    account.tell(&Account::deposit, 4L);
    co_await account.stop();
  }(file));
  std::ifstream in(file);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "stopped at 7");
  std::remove(file.c_str());
}

TEST_F(ProcessActor, WhatCannotCrossFailsWithASerializationError) {
  cohort::run([]() -> cohort::task<void> {
    auto takes = cohort::spawn_process_actor<Takes>();
    EXPECT_THROW(co_await takes.ask(&Takes::take, Opaque{3}), cohort::SerializationError);
    EXPECT_THROW(co_await takes.ask(&Takes::give), cohort::SerializationError);
    EXPECT_EQ(co_await takes.ask([](Takes&) { return 1; }), 1);  // a captureless lambda crosses
    EXPECT_THROW(co_await takes.ask([one = 1](Takes&) { return one; }), cohort::SerializationError);
    co_await takes.stop();
  }());
}

/// What it was told, in order: the first letter of each text and their total size.
class Journal {
 public:
  void add(std::string text) {
    firsts_ += text.front();
    bytes_ += text.size();
  }
  std::string firsts() const { return firsts_ + ":" + std::to_string(bytes_); }

 private:
  std::string firsts_;
  std::size_t bytes_ = 0;
};

// Requests go straight into the pipe while it has room and queue behind a full one; either way they
// arrive in the order sent, and the replies come back the same way.
TEST_F(ProcessActor, MessagesKeepTheirOrderPastAFullPipe) {
  cohort::run([]() -> cohort::task<void> {
    auto journal = cohort::spawn_process_actor<Journal>();
    std::string expected;
    std::size_t bytes = 0;
    for (int i = 0; i < 60; ++i) {
      // Every third is large: 20 of them fill the pipe several times over.
      const std::size_t size = i % 3 == 0 ? 300'000 : 16;
      const char first = static_cast<char>('a' + i % 26);
      journal.tell(&Journal::add, std::string(size, first));
      expected += first;
      bytes += size;
    }
    std::vector<cohort::Future<std::string>> asks;
    for (int i = 0; i < 5; ++i) asks.push_back(journal.call(&Journal::firsts));
    EXPECT_EQ(co_await asks.back().async_get(), expected + ":" + std::to_string(bytes));
    co_await journal.stop();
  }());
}

TEST_F(ProcessActor, FoundByNameAndReachedFromAPlainThread) {
  cohort::Runtime runtime;
  runtime.run([]() -> cohort::task<void> {
    auto account = cohort::spawn_process_actor<Account>({.name = "savings"}, 50L);
    std::atomic<long> seen{0};
    std::thread caller([&seen] {
      auto found = cohort::find_actor<Account>("savings");
      if (found) seen = found->call(&Account::deposit, 1L).get(5s);
    });
    while (seen == 0) co_await cohort::sleep(1ms);
    caller.join();
    EXPECT_EQ(seen, 51);
    co_await account.stop();
  }());
}

/// The intermediate process of WorkersDieWithTheirParentEvenUnderSigkill: spawns a process actor and
/// reports its worker's pid, then waits to be killed.
void spawn_and_wait(cohort::Connection report) {
  auto account = cohort::spawn_process_actor<Account>(1L);
  report.send(account.call(&Account::pid).get(10s));
  std::this_thread::sleep_for(60s);
}

TEST_F(ProcessActor, WorkersDieWithTheirParentEvenUnderSigkill) {
  auto [here, there] = cohort::Pipe();
  cohort::Process parent(spawn_and_wait, std::move(there));
  parent.start();
  const int worker = here.recv<int>();
  EXPECT_FALSE(process_gone(worker));
  parent.kill();
  parent.join();
  EXPECT_TRUE(eventually_gone(worker, 3s)) << "worker " << worker << " outlived its parent";
}

TEST_F(ProcessActor, DestroyingTheRuntimeEndsTheWorker) {
  int worker = 0;
  std::vector<cohort::Future<long>> queued;
  {
    cohort::Runtime runtime;
    auto account = cohort::spawn_process_actor<Account>({.runtime = &runtime}, 1L);
    worker = runtime.run([](cohort::ActorRef<Account> a) -> cohort::task<int> { co_return co_await a.ask(&Account::pid); }(account));
    for (int i = 0; i < 3; ++i) queued.push_back(account.call(&Account::deposit, 1L));  // the loop is not running
  }
  for (auto& f : queued) EXPECT_THROW(f.get(2s), cohort::ActorDeadError);
  EXPECT_TRUE(eventually_gone(worker));
}

}  // namespace
