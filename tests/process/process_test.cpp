#include "cohort/process.hpp"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cohort/connection.hpp"
#include "cohort/error.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"

namespace {

using namespace std::chrono_literals;

// A child reports what it saw through its exit status: 0 if every check held, 7 otherwise.
void check_in_child(bool ok) {
  if (!ok) std::_Exit(7);
}

bool process_exists(int pid) { return std::filesystem::exists("/proc/" + std::to_string(pid)); }

TEST(Process, TargetRunsInAChildWithItsArguments) {
  cohort::Process p([](const std::string& word, int n) { check_in_child(word == "test" && n == 3); }, std::string("test"), 3);
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ChildRunsInAnotherProcess) {
  const int parent = ::getpid();
  cohort::Process p([](int parent) { check_in_child(::getpid() != parent && cohort::parent_process()->pid == parent); },
                    parent);
  EXPECT_EQ(p.pid(), 0);
  p.start();
  EXPECT_GT(p.pid(), 0);
  EXPECT_NE(p.pid(), parent);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ExitCodeFollowsPython) {
  cohort::Process normal([] {});
  cohort::Process threw([] { throw std::runtime_error("boom"); });
  cohort::Process exited([] { std::exit(3); });
  cohort::Process killed([] { std::this_thread::sleep_for(60s); });
  for (auto* p : {&normal, &threw, &exited, &killed}) p->start();
  EXPECT_EQ(killed.exitcode(), std::nullopt);
  killed.kill();
  for (auto* p : {&normal, &threw, &exited, &killed}) p->join();
  EXPECT_EQ(normal.exitcode(), 0);
  EXPECT_EQ(threw.exitcode(), 1);
  EXPECT_EQ(exited.exitcode(), 3);
  EXPECT_EQ(killed.exitcode(), -SIGKILL);
}

TEST(Process, ExceptionInTheChildIsReportedOnStderr) {
  testing::internal::CaptureStderr();
  cohort::Process p({.name = "thrower"}, [] { throw std::invalid_argument("bad input 42"); });
  p.start();
  p.join();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(p.exitcode(), 1);
  EXPECT_NE(err.find("Process thrower"), std::string::npos) << err;
  EXPECT_NE(err.find("std::invalid_argument: bad input 42"), std::string::npos) << err;
}

TEST(Process, JoinWithTimeoutAndIsAlive) {
  cohort::Process p([] { std::this_thread::sleep_for(300ms); });
  EXPECT_FALSE(p.is_alive());
  p.start();
  EXPECT_TRUE(p.is_alive());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.join(50ms));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 250ms);
  EXPECT_TRUE(p.is_alive());
  EXPECT_TRUE(p.join(10s));
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, TerminateEndsTheChildWithSigterm) {
  cohort::Process p([] { std::this_thread::sleep_for(60s); });
  p.start();
  p.terminate();
  EXPECT_TRUE(p.join(10s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  p.terminate();  // already ended: nothing happens
  p.kill();
}

// The event loop claims SIGTERM for itself; its children must not inherit that.
TEST(Process, TerminateWorksForAChildStartedInsideTheEventLoop) {
  const int code = cohort::run([]() -> cohort::task<int> {
    cohort::Process p([] { std::this_thread::sleep_for(60s); });
    p.start();
    co_await cohort::sleep(20ms);
    p.terminate();
    p.join(10s);
    co_return p.exitcode().value_or(99);
  }());
  EXPECT_EQ(code, -SIGTERM);
}

TEST(Process, NamesDefaultToProcessN) {
  cohort::Process a([] {});
  cohort::Process b([] {});
  ASSERT_EQ(a.name().rfind("Process-", 0), 0u);
  const int na = std::stoi(a.name().substr(8));
  EXPECT_EQ(b.name(), "Process-" + std::to_string(na + 1));
  cohort::Process named({.name = "calc-1"}, [] {});
  EXPECT_EQ(named.name(), "calc-1");
}

TEST(Process, ChildKnowsItselfAndItsParent) {
  EXPECT_EQ(cohort::current_process().name, "MainProcess");
  EXPECT_EQ(cohort::current_process().pid, ::getpid());
  EXPECT_FALSE(cohort::parent_process().has_value());
  const int parent = ::getpid();
  cohort::Process p(
      {.name = "worker-7"},
      [](int parent) {
        const auto me = cohort::current_process();
        const auto up = cohort::parent_process();
        check_in_child(me.name == "worker-7" && me.pid == ::getpid() && up && up->pid == parent &&
                       up->name == "MainProcess");
      },
      parent);
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, GrandchildrenAreNamedAfterTheirParent) {
  cohort::Process p([] {
    const std::string parent_name = cohort::current_process().name;
    cohort::Process child([](const std::string& parent) { check_in_child(cohort::current_process().name == parent + ":1"); },
                          parent_name);
    child.start();
    child.join();
    check_in_child(child.exitcode() == 0);
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// Targets that take their arguments as std::thread's do: a move-only Connection by value, a T& that
// works on the child's copy, a std::unique_ptr under fork.
void echo_doubled(cohort::Connection conn) { conn.send(2 * conn.recv<int>()); }
void count_up(std::vector<int>& seen, const std::string& label) {
  seen.push_back(static_cast<int>(label.size()));
  check_in_child(seen == std::vector<int>{1, 2, 5});
}

TEST(Process, AMoveOnlyConnectionTakenByValueIsMovedIntoTheTarget) {
  auto [parent_end, child_end] = cohort::Pipe();
  cohort::Process p(echo_doubled, std::move(child_end));
  p.start();
  parent_end.send(21);
  EXPECT_EQ(parent_end.recv<int>(), 42);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ATReferenceParameterGetsTheChildsCopyOfTheArgument) {
  std::vector<int> seen{1, 2};
  cohort::Process p({.name = "counting"}, count_up, seen, std::string("hello"));
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));  // the child worked on its own copy
}

TEST(Process, AMoveOnlyUniquePtrCrossesUnderFork) {
  auto value = std::make_unique<std::string>("owned");
  cohort::Process p({.start_method = cohort::StartMethod::fork},
                    [](std::unique_ptr<std::string> text) { check_in_child(text && *text == "owned"); }, std::move(value));
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, AGenericLambdaTargetGetsItsArgumentsAsRvalues) {
  auto [parent_end, child_end] = cohort::Pipe();
  cohort::Process p([](auto conn, auto n) { conn.send(n + 1); }, std::move(child_end), 41);
  p.start();
  EXPECT_EQ(parent_end.recv<int>(), 42);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

class Counter : public cohort::Process {
 public:
  explicit Counter(int n) : cohort::Process({.name = "counter"}), n_(n) {}

 private:
  void run() override { check_in_child(n_ == 5 && cohort::current_process().name == "counter"); }
  int n_;
};

TEST(Process, SubclassOverridesRun) {
  Counter c(5);
  c.start();
  c.join();
  EXPECT_EQ(c.exitcode(), 0);
}

TEST(Process, MisuseThrowsProcessError) {
  cohort::Process p([] {});
  EXPECT_THROW(p.join(), cohort::ProcessError);
  p.start();
  EXPECT_THROW(p.start(), cohort::ProcessError);
  EXPECT_THROW(p.set_daemon(true), cohort::ProcessError);
  p.join();
}

TEST(Process, CloseOnlyOnceEndedAndThenTheObjectIsUnusable) {
  cohort::Process p([] { std::this_thread::sleep_for(200ms); });
  p.start();
  EXPECT_THROW(p.close(), cohort::ProcessError);
  p.join();
  p.close();
  p.close();
  EXPECT_THROW(p.is_alive(), cohort::ProcessError);
  EXPECT_THROW(p.join(), cohort::ProcessError);
  EXPECT_EQ(p.name().empty(), false);
}

TEST(Process, ActiveChildrenListsRunningChildrenAndReapsTheRest) {
  cohort::Process quick([] {});
  cohort::Process slow({.name = "slow-one"}, [] { std::this_thread::sleep_for(60s); });
  quick.start();
  slow.start();
  const int quick_pid = quick.pid();
  std::this_thread::sleep_for(100ms);
  bool saw_slow = false;
  for (const auto& child : cohort::active_children()) {
    EXPECT_NE(child.pid, quick_pid);
    saw_slow |= child.name == "slow-one" && child.pid == slow.pid();
  }
  EXPECT_TRUE(saw_slow);
  EXPECT_EQ(quick.exitcode(), 0);  // reaped by active_children; the status was kept
  slow.kill();
  slow.join();
  EXPECT_TRUE(cohort::active_children().empty());
}

TEST(Process, NoZombieIsLeftAfterJoin) {
  cohort::Process p([] {});
  p.start();
  const int pid = p.pid();
  p.join();
  EXPECT_FALSE(process_exists(pid));
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), -1);  // ECHILD: already reaped
}

TEST(Process, ChildOfADroppedProcessObjectIsStillReaped) {
  int pid = 0;
  {
    cohort::Process p([] { std::this_thread::sleep_for(100ms); });
    p.start();
    pid = p.pid();
  }
  std::this_thread::sleep_for(300ms);
  cohort::active_children();
  EXPECT_FALSE(process_exists(pid));
}

TEST(Process, DaemonMayNotStartChildren) {
  cohort::Process p({.daemon = true}, [] {
    cohort::Process inner([] {});
    try {
      inner.start();
    } catch (const cohort::ProcessError&) {
      std::_Exit(5);
    }
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 5);
}

// A parent killed with SIGKILL takes its daemon child with it. This process becomes the subreaper of
// the orphan, so it can see the orphan's end and reap it.
TEST(Process, DaemonDiesWhenItsParentIsKilled) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  auto [reader, writer] = cohort::Pipe(false);
  cohort::Process middle(
      [](cohort::Connection& report) {
        cohort::Process daemon({.daemon = true}, [] { std::this_thread::sleep_for(60s); });
        daemon.start();
        report.send(daemon.pid());
        std::this_thread::sleep_for(60s);
      },
      std::move(writer));
  middle.start();
  const int daemon_pid = reader.recv<int>();
  middle.kill();
  middle.join();
  // The orphaned daemon is now this process's child: it must end at once, killed by SIGKILL.
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  int reaped = 0;
  // ECHILD until the orphan has been handed to this process: its parent (under forkserver, the middle
  // process's own fork server) is dying at the same moment.
  while (((reaped = ::waitpid(daemon_pid, &status, WNOHANG)) == 0 || (reaped < 0 && errno == ECHILD)) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_EQ(reaped, daemon_pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(Process, ChildWaitsForItsOwnChildrenBeforeExiting) {
  auto [reader, writer] = cohort::Pipe(false);
  cohort::Process parent(
      [](cohort::Connection& report) {
        cohort::Process late(
            [](cohort::Connection& out) {
              std::this_thread::sleep_for(200ms);
              out.send(std::string("late"));
            },
            std::move(report));
        late.start();
        // Returns without joining: the child's exit joins `late` first, as Python's does.
      },
      std::move(writer));
  parent.start();
  parent.join();
  EXPECT_TRUE(reader.poll());  // the grandchild wrote before the parent ended
  EXPECT_EQ(reader.recv<std::string>(), "late");
}

TEST(Process, CpuCountIsPositive) { EXPECT_GE(cohort::cpu_count(), 1); }

}  // namespace
