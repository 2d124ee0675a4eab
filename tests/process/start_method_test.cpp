// What differs between the start methods, and what each must report clearly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "cohort/connection.hpp"
#include "cohort/context.hpp"
#include "cohort/error.hpp"
#include "cohort/gather.hpp"
#include "cohort/process.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"

namespace {

using namespace std::chrono_literals;

int changed_after_start_of_main = 0;

void report_global(cohort::Connection& out) { out.send(changed_after_start_of_main); }

struct NotSerializable {
  int value = 0;
};

TEST(StartMethod, DefaultIsForkserverAfterInitAndSetStartMethodAppliesToLaterProcesses) {
  const auto before = cohort::get_start_method();
  cohort::set_start_method(cohort::StartMethod::spawn);
  cohort::Process p([] {});
  EXPECT_EQ(p.start_method(), cohort::StartMethod::spawn);
  cohort::set_start_method(cohort::StartMethod::fork);
  EXPECT_EQ(p.start_method(), cohort::StartMethod::spawn);
  cohort::Process q([] {});
  EXPECT_EQ(q.start_method(), cohort::StartMethod::fork);
  cohort::set_start_method(before);
  EXPECT_STREQ(cohort::to_string(cohort::StartMethod::forkserver), "forkserver");
}

// Each method shows its nature: fork copies the parent's memory as it is now, spawn runs the program
// afresh, and the fork server was forked when init() ran.
TEST(StartMethod, EachMethodStartsFromTheMemoryItPromises) {
  changed_after_start_of_main = 42;
  for (auto method : {cohort::StartMethod::fork, cohort::StartMethod::spawn, cohort::StartMethod::forkserver}) {
    auto [reader, writer] = cohort::Pipe(false);
    cohort::Process p({.start_method = method}, report_global, std::move(writer));
    p.start();
    EXPECT_EQ(reader.recv<int>(), method == cohort::StartMethod::fork ? 42 : 0) << cohort::to_string(method);
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
  }
  changed_after_start_of_main = 0;
}

TEST(StartMethod, ForkAcceptsAnyCallable) {
  auto [reader, writer] = cohort::Pipe(false);
  const std::string captured = "captured";
  NotSerializable plain{5};
  cohort::Process p({.start_method = cohort::StartMethod::fork},
                    [captured, &writer](NotSerializable v) { writer.send(captured + std::to_string(v.value)); }, plain);
  p.start();
  EXPECT_EQ(reader.recv<std::string>(), "captured5");
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(StartMethod, SpawnAndForkserverRejectWhatCannotCrossWithAClearError) {
  for (auto method : {cohort::StartMethod::spawn, cohort::StartMethod::forkserver}) {
    const int n = 3;
    cohort::Process capturing({.start_method = method}, [n] { std::exit(n); });
    try {
      capturing.start();
      FAIL() << "a capturing lambda started under " << cohort::to_string(method);
    } catch (const cohort::ProcessError& e) {
      EXPECT_NE(std::string(e.what()).find("captureless lambda"), std::string::npos) << e.what();
    }
    cohort::Process unserializable({.start_method = method}, [](NotSerializable) {}, NotSerializable{});
    try {
      unserializable.start();
      FAIL() << "an unserializable argument crossed under " << cohort::to_string(method);
    } catch (const cohort::ProcessError& e) {
      EXPECT_NE(std::string(e.what()).find("NotSerializable"), std::string::npos) << e.what();
    }
    EXPECT_EQ(unserializable.pid(), 0);  // nothing was started
  }
}

TEST(StartMethod, ChildThatDiesBeforeInitIsReportedByStart) {
  ::setenv("COHORT_TEST_EXIT_BEFORE_INIT", "1", 1);
  cohort::Process p({.start_method = cohort::StartMethod::spawn}, [] {});
  try {
    p.start();
    ::unsetenv("COHORT_TEST_EXIT_BEFORE_INIT");
    FAIL() << "start() returned for a child that never ran init";
  } catch (const cohort::ProcessError& e) {
    ::unsetenv("COHORT_TEST_EXIT_BEFORE_INIT");
    const std::string what = e.what();
    EXPECT_NE(what.find("exit code 3"), std::string::npos) << what;
    EXPECT_NE(what.find("cohort::init"), std::string::npos) << what;
  }
}

TEST(StartMethod, TargetExceptionIsReportedAndExitCodeIsOne) {
  for (auto method : {cohort::StartMethod::spawn, cohort::StartMethod::forkserver}) {
    testing::internal::CaptureStderr();
    cohort::Process p({.name = "thrower", .start_method = method}, [] { throw std::invalid_argument("bad input 42"); });
    p.start();
    p.join();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(p.exitcode(), 1);
    EXPECT_NE(err.find("Process thrower:"), std::string::npos) << err;
    EXPECT_NE(err.find("bad input 42"), std::string::npos) << err;
  }
}

TEST(StartMethod, SignalsReachForkserverChildrenAndTheirStatusIsReported) {
  cohort::Process p({.start_method = cohort::StartMethod::forkserver}, [] { std::this_thread::sleep_for(60s); });
  p.start();
  EXPECT_TRUE(p.is_alive());
  EXPECT_FALSE(p.join(50ms));
  p.terminate();
  EXPECT_TRUE(p.join(5s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  cohort::Process code({.start_method = cohort::StartMethod::forkserver}, [](int n) { std::exit(n); }, 9);
  code.start();
  code.join();
  EXPECT_EQ(code.exitcode(), 9);
}

TEST(Process, AsyncJoinWaitsWithoutBlockingTheLoop) {
  cohort::Process p([] { std::this_thread::sleep_for(200ms); });
  p.start();
  const int ticks = cohort::run([&p]() -> cohort::task<int> {
    int count = 0;
    bool done = false;
    auto ticker = [&]() -> cohort::task<void> {
      while (!done) {
        co_await cohort::sleep(10ms);
        ++count;
      }
    };
    auto joiner = [&]() -> cohort::task<void> {
      co_await p.async_join();
      done = true;
    };
    co_await cohort::gather(ticker(), joiner());
    co_return count;
  }());
  EXPECT_GE(ticks, 5);
  EXPECT_EQ(p.exitcode(), 0);
}

}  // namespace

namespace {

void exit_with(int code) { std::exit(code); }

TEST(StartMethod, ContextsStartProcessesWithTheirMethod) {
  for (auto method : {cohort::StartMethod::fork, cohort::StartMethod::spawn, cohort::StartMethod::forkserver}) {
    const auto ctx = cohort::get_context(method);
    EXPECT_EQ(ctx.start_method(), method);
    auto p = ctx.process(exit_with, 4);
    auto named = ctx.process({.name = "from-context"}, exit_with, 5);
    EXPECT_EQ(p.start_method(), method);
    EXPECT_EQ(named.name(), "from-context");
    p.start();
    named.start();
    p.join();
    named.join();
    EXPECT_EQ(p.exitcode(), 4);
    EXPECT_EQ(named.exitcode(), 5);
  }
  EXPECT_EQ(cohort::get_context().start_method(), cohort::get_start_method());
}

}  // namespace
