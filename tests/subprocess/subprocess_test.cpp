#include "cohort/subprocess.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cohort/error.hpp"
#include "cohort/gather.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/wait_for.hpp"
#include "resource_check.hpp"

namespace {

namespace sp = cohort::subprocess;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int open_fd_count() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count - 1;  // the iterator's own descriptor
}

using cohort_test::eventually_gone;
using cohort_test::process_gone;
using cohort_test::zombie_children;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Coroutines build their arguments before co_await: GCC 12 rejects a braced list of strings inside a
// co_await expression ("array used as initializer") and mishandles a braced options temporary there.
cohort::task<int> sleep_returncode(std::string seconds) {
  std::vector<std::string> args{"sleep", std::move(seconds)};
  co_return (co_await sp::async_run(std::move(args))).returncode;
}

cohort::task<void> async_run_and_time_out() {
  std::vector<std::string> echo{"sh", "-c", "echo x; echo y >&2"};
  sp::RunOptions with_input{.input = "in", .capture_output = true};
  co_await sp::async_run(std::move(echo), std::move(with_input));
  std::vector<std::string> sleeper{"sleep", "5"};
  sp::RunOptions short_timeout{.capture_output = true, .timeout = 20ms};
  try {
    co_await sp::async_run(std::move(sleeper), std::move(short_timeout));
  } catch (const cohort::TimeoutError&) {
  }
}

class Subprocess : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cohort-subprocess-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    EXPECT_EQ(zombie_children(), std::vector<int>{});
  }

  std::filesystem::path dir_;
};

// --- run ---------------------------------------------------------------------------------------------

TEST_F(Subprocess, RunCapturesBothOutputsAndTheReturncode) {
  const auto r = sp::run({"sh", "-c", "echo out; echo err >&2; exit 3"}, {.capture_output = true});
  EXPECT_EQ(r.args, (std::vector<std::string>{"sh", "-c", "echo out; echo err >&2; exit 3"}));
  EXPECT_EQ(r.returncode, 3);
  EXPECT_EQ(r.stdout_output, "out\n");
  EXPECT_EQ(r.stderr_output, "err\n");
}

TEST_F(Subprocess, TheContractsExamples) {
  auto r = sp::run({"ls", "-al"}, {.capture_output = true, .timeout = 3s, .check = false});
  EXPECT_EQ(r.returncode, 0);
  EXPECT_NE(r.stdout_output.find(".."), std::string::npos);
  EXPECT_EQ(r.stderr_output, "");
  sp::Popen p({"python3"}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
  auto [out, err] = p.communicate("print('hello')", 3s);
  EXPECT_EQ(out, "hello\n");
  EXPECT_EQ(err, "");
  EXPECT_EQ(p.returncode(), 0);
}

TEST_F(Subprocess, RunInheritsThisProcessStdoutByDefault) {
  testing::internal::CaptureStdout();
  const auto r = sp::run({"echo", "inherited"});
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_EQ(r.returncode, 0);
  EXPECT_EQ(r.stdout_output, "");
  EXPECT_EQ(printed, "inherited\n");
}

TEST_F(Subprocess, RunWritesInputToStdin) {
  EXPECT_EQ(sp::run({"cat"}, {.input = "hello", .capture_output = true}).stdout_output, "hello");
  // Empty input still gives the child a closed stdin, not this process's.
  EXPECT_EQ(sp::run({"cat"}, {.input = "", .capture_output = true}).stdout_output, "");
}

TEST_F(Subprocess, CheckThrowsCalledProcessErrorWithTheOutput) {
  try {
    sp::run({"sh", "-c", "echo o; echo e >&2; exit 4"}, {.capture_output = true, .check = true});
    FAIL() << "no CalledProcessError";
  } catch (const cohort::CalledProcessError& e) {
    EXPECT_EQ(e.returncode, 4);
    EXPECT_EQ(e.cmd, (std::vector<std::string>{"sh", "-c", "echo o; echo e >&2; exit 4"}));
    EXPECT_EQ(e.output, "o\n");
    EXPECT_EQ(e.stderr_output, "e\n");
    EXPECT_NE(std::string(e.what()).find("returned non-zero exit status 4"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(sp::run({"true"}, {.check = true}));
  EXPECT_THROW(sp::run({"false"}).check_returncode(), cohort::CalledProcessError);
}

TEST_F(Subprocess, ASignalGivesANegativeReturncode) {
  EXPECT_EQ(sp::run({"sh", "-c", "kill -TERM $$"}).returncode, -SIGTERM);
  try {
    sp::run({"sh", "-c", "kill -KILL $$"}, {.check = true});
    FAIL() << "no CalledProcessError";
  } catch (const cohort::CalledProcessError& e) {
    EXPECT_EQ(e.returncode, -SIGKILL);
    EXPECT_NE(std::string(e.what()).find("died with signal 9"), std::string::npos) << e.what();
  }
}

TEST_F(Subprocess, TimeoutKillsAndReapsTheChild) {
  const auto pid_file = dir_ / "pid";
  const auto start = Clock::now();
  try {
    sp::run({"sh", "-c", "echo $$ > " + pid_file.string() + "; exec sleep 30"},
            {.capture_output = true, .timeout = 300ms});
    FAIL() << "no TimeoutError";
  } catch (const cohort::TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("subprocess.run: command 'sh -c"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("timed out after 300 ms"), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - start, 5s);
  const int pid = std::stoi(read_file(pid_file));
  EXPECT_TRUE(process_gone(pid)) << "run() returned before the child was reaped";
}

TEST_F(Subprocess, CwdAndEnv) {
  EXPECT_EQ(sp::run({"pwd", "-P"}, {.capture_output = true, .cwd = dir_}).stdout_output,
            std::filesystem::canonical(dir_).string() + "\n");
  // env replaces the whole environment; without PATH in it, programs are found in /bin:/usr/bin.
  EXPECT_EQ(
      sp::run({"env"}, {.capture_output = true, .env = sp::Environment{{"FOO", "bar"}, {"EMPTY", ""}}}).stdout_output,
      "EMPTY=\nFOO=bar\n");
  EXPECT_EQ(
      sp::run({"sh", "-c", "echo \"$FOO:$HOME\""}, {.capture_output = true, .env = sp::Environment{{"FOO", "x y"}}})
          .stdout_output,
      "x y:\n");
  // A relative program path is looked up from cwd, as the child sees it.
  {
    std::ofstream script(dir_ / "hello.sh");
    script << "#!/bin/sh\necho hello from \"${PWD##*/}\"\n";
  }
  std::filesystem::permissions(dir_ / "hello.sh", std::filesystem::perms::owner_all);
  EXPECT_EQ(sp::run({"./hello.sh"}, {.capture_output = true, .cwd = dir_}).stdout_output,
            "hello from " + dir_.filename().string() + "\n");
  // PATH in env is where a bare name is searched.
  EXPECT_EQ(
      sp::run({"hello.sh"}, {.capture_output = true, .env = sp::Environment{{"PATH", "/nowhere:" + dir_.string()}}})
          .stdout_output.substr(0, 11),
      "hello from ");
}

TEST_F(Subprocess, StreamOptions) {
  // DEVNULL: stdin reads nothing, stdout is thrown away.
  EXPECT_EQ(sp::run({"cat"}, {.stdin_ = sp::DEVNULL, .stdout_ = sp::PIPE}).stdout_output, "");
  const auto quiet = sp::run({"sh", "-c", "echo lost; echo kept >&2"}, {.stdout_ = sp::DEVNULL, .stderr_ = sp::PIPE});
  EXPECT_EQ(quiet.stdout_output, "");
  EXPECT_EQ(quiet.stderr_output, "kept\n");
  // STDOUT: stderr goes where stdout goes, in order.
  const auto merged = sp::run({"sh", "-c", "echo a; echo b >&2; echo c"}, {.stdout_ = sp::PIPE, .stderr_ = sp::STDOUT});
  EXPECT_EQ(merged.stdout_output, "a\nb\nc\n");
  EXPECT_EQ(merged.stderr_output, "");
  // A descriptor: the child writes to (and reads from) this process's file.
  const int out = ::open((dir_ / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(out, 0);
  EXPECT_EQ(sp::run({"echo", "to a file"}, {.stdout_ = out}).returncode, 0);
  ::close(out);
  EXPECT_EQ(read_file(dir_ / "out"), "to a file\n");
  const int in = ::open((dir_ / "out").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(in, 0);
  EXPECT_EQ(sp::run({"tr", "a-z", "A-Z"}, {.stdin_ = in, .stdout_ = sp::PIPE}).stdout_output, "TO A FILE\n");
  ::close(in);
}

TEST_F(Subprocess, OptionsPythonRejectsAreRejected) {
  EXPECT_THROW(sp::run({"cat"}, {.stdin_ = sp::PIPE, .input = "x"}), std::invalid_argument);
  EXPECT_THROW(sp::run({"true"}, {.stdout_ = sp::PIPE, .capture_output = true}), std::invalid_argument);
  EXPECT_THROW(sp::Popen({"true"}, {.stdin_ = sp::STDOUT}), std::invalid_argument);
  EXPECT_THROW(sp::Popen({"true"}, {.stdout_ = sp::STDOUT}), std::invalid_argument);
  EXPECT_THROW(sp::Popen({"true"}, {.stdout_ = 987}), std::invalid_argument);
  EXPECT_THROW(sp::Popen({}), std::invalid_argument);
  EXPECT_THROW(sp::Popen({"env"}, {.env = sp::Environment{{"A=B", "c"}}}), std::invalid_argument);
}

TEST_F(Subprocess, AProgramThatCannotStartThrowsAndLeavesNothingBehind) {
  const int fds = open_fd_count();
  try {
    sp::Popen p({"cohort-no-such-program", "arg"}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
    FAIL() << "started a program that does not exist";
  } catch (const cohort::ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot run 'cohort-no-such-program': No such file or directory"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(sp::run({"/nonexistent/program"}), cohort::ProcessError);
  { std::ofstream(dir_ / "not-executable") << "echo hi\n"; }
  try {
    sp::run({(dir_ / "not-executable").string()});
    FAIL() << "ran a file without execute permission";
  } catch (const cohort::ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }
  try {
    sp::run({"pwd"}, {.cwd = dir_ / "missing"});
    FAIL() << "ran in a directory that does not exist";
  } catch (const cohort::ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot change to directory"), std::string::npos) << e.what();
  }
  EXPECT_EQ(open_fd_count(), fds);
  EXPECT_EQ(zombie_children(), std::vector<int>{});
}

// --- Popen ---------------------------------------------------------------------------------------------

TEST_F(Subprocess, PopenPipesWriteReadAndClose) {
  sp::Popen cat({"cat"}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
  EXPECT_GT(cat.pid(), 0);
  EXPECT_EQ(cat.args(), std::vector<std::string>{"cat"});
  EXPECT_TRUE(cat.stdin_ && cat.stdout_);
  EXPECT_FALSE(cat.stderr_);
  cat.stdin_.write("one\ntwo\n");
  EXPECT_EQ(cat.stdout_.readline(), "one\n");
  EXPECT_EQ(cat.stdout_.read(2), "tw");
  cat.stdin_.write("three");
  EXPECT_EQ(cat.stdout_.readline(), "o\n");
  cat.stdin_.close();
  EXPECT_TRUE(cat.stdin_.closed());
  EXPECT_EQ(cat.stdout_.read(), "three");
  EXPECT_EQ(cat.stdout_.readline(), "");
  EXPECT_EQ(cat.wait(), 0);
  EXPECT_THROW(cat.stdin_.write("late"), cohort::ProcessError);
}

TEST_F(Subprocess, WhatReadlineReadAheadIsNotLost) {
  sp::Popen p({"printf", "a\\nb\\nc\\n"}, {.stdout_ = sp::PIPE});
  EXPECT_EQ(p.stdout_.readline(), "a\n");
  EXPECT_THROW(p.stdout_pipe(), cohort::ProcessError) << "the next process would miss the buffered lines";
  EXPECT_EQ(p.communicate().first, "b\nc\n");
}

TEST_F(Subprocess, WritingToAChildThatStoppedReadingIsEOFErrorNotSIGPIPE) {
  sp::Popen p({"true"}, {.stdin_ = sp::PIPE});
  p.wait();
  EXPECT_THROW(p.stdin_.write(std::string(1 << 20, 'x')), cohort::EOFError);
}

TEST_F(Subprocess, CommunicateReadsBothPipesAtOnceWithoutDeadlock) {
  const std::string input(1 << 20, 'i');
  // The child fills stderr before it reads any input, then echoes the input to stdout: reading one pipe at
  // a time, or writing all input first, would leave both sides blocked.
  sp::Popen p({"sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' e >&2; cat; head -c 1048576 /dev/zero | tr '\\0' o"},
              {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
  const auto [out, err] = p.communicate(input, 30s);
  EXPECT_EQ(out.size(), 2u << 20);
  EXPECT_EQ(out.substr(0, input.size()), input);
  EXPECT_EQ(out.find_first_not_of('o', input.size()), std::string::npos);
  EXPECT_EQ(err, std::string(1 << 20, 'e'));
  EXPECT_EQ(p.returncode(), 0);

  const auto r = sp::run({"sh", "-c", "head -c 1048576 /dev/zero >&2; head -c 1048576 /dev/zero"},
                         {.capture_output = true, .timeout = 30s});
  EXPECT_EQ(r.stdout_output.size(), 1u << 20);
  EXPECT_EQ(r.stderr_output.size(), 1u << 20);
}

TEST_F(Subprocess, CommunicateTimesOutAndTheNextCallCarriesOn) {
  sp::Popen slow({"sh", "-c", "echo before; sleep 0.5; echo after; echo err >&2"},
                 {.stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
  const auto start = Clock::now();
  try {
    slow.communicate({}, 100ms);
    FAIL() << "no TimeoutError";
  } catch (const cohort::TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("Popen.communicate: command 'sh -c"), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - start, 400ms);
  EXPECT_EQ(slow.poll(), std::nullopt) << "the child keeps running after a timeout";
  // Everything comes back on the next call, including what the first one had read.
  EXPECT_EQ(slow.communicate(), (std::pair<std::string, std::string>{"before\nafter\n", "err\n"}));
  EXPECT_EQ(slow.returncode(), 0);

  // Input not yet written when the time ran out is written by the next call, which may not add any.
  sp::Popen fed({"sh", "-c", "sleep 0.3; cat"}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
  const std::string input(1 << 20, 'd');
  EXPECT_THROW(fed.communicate(input, 50ms), cohort::TimeoutError);
  EXPECT_THROW(fed.communicate("more", 50ms), std::invalid_argument);
  EXPECT_EQ(fed.communicate().first, input);
}

TEST_F(Subprocess, CommunicateInputNeedsAPipe) {
  sp::Popen p({"true"});
  EXPECT_THROW(p.communicate("input"), std::invalid_argument);
  EXPECT_EQ(p.communicate(), (std::pair<std::string, std::string>{}));
}

TEST_F(Subprocess, WaitPollAndReturncode) {
  sp::Popen p({"sleep", "0.3"});
  EXPECT_EQ(p.poll(), std::nullopt);
  EXPECT_EQ(p.returncode(), std::nullopt);
  const auto start = Clock::now();
  EXPECT_THROW(p.wait(50ms), cohort::TimeoutError);
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(p.wait(), 0);
  EXPECT_EQ(p.poll(), 0);
  EXPECT_EQ(p.returncode(), 0);
  EXPECT_EQ(p.wait(1ms), 0);
}

TEST_F(Subprocess, SignalsEndTheChildAndNothingHappensAfterItIsReaped) {
  sp::Popen terminated({"sleep", "30"});
  terminated.terminate();
  EXPECT_EQ(terminated.wait(10s), -SIGTERM);
  sp::Popen killed({"sleep", "30"});
  killed.kill();
  EXPECT_EQ(killed.wait(10s), -SIGKILL);
  sp::Popen interrupted({"sleep", "30"});
  interrupted.send_signal(SIGINT);
  EXPECT_EQ(interrupted.wait(10s), -SIGINT);
  EXPECT_NO_THROW(interrupted.kill());
  EXPECT_EQ(interrupted.returncode(), -SIGINT);
}

TEST_F(Subprocess, PipelineHandsStdoutToTheNextProcess) {
  sp::Popen source({"printf", "alpha\\nbeta\\ngamma\\ndelta\\n"}, {.stdout_ = sp::PIPE});
  sp::Popen filter({"grep", "^[ab]"}, {.stdin_ = source.stdout_pipe(), .stdout_ = sp::PIPE});
  EXPECT_TRUE(source.stdout_.closed());
  EXPECT_THROW(source.stdout_pipe(), cohort::ProcessError);
  sp::Popen count({"wc", "-l"}, {.stdin_ = filter.stdout_pipe(), .stdout_ = sp::PIPE});
  EXPECT_EQ(std::stoi(count.communicate({}, 10s).first), 2);
  EXPECT_EQ(source.wait(10s), 0);
  EXPECT_EQ(filter.wait(10s), 0);
}

TEST_F(Subprocess, PipelineOutputAndSigpipeReachTheFirstProcess) {
  sp::Popen source({"printf", "alpha\\nbeta\\ngamma\\ndelta\\n"}, {.stdout_ = sp::PIPE});
  sp::Popen filter({"grep", "e"}, {.stdin_ = source.stdout_pipe(), .stdout_ = sp::PIPE});
  EXPECT_EQ(filter.communicate({}, 10s).first, "beta\ndelta\n");
  // This process closed its copy of the pipe, so `yes` learns that `head` is gone.
  sp::Popen yes({"yes"}, {.stdout_ = sp::PIPE});
  sp::Popen head({"head", "-n", "3"}, {.stdin_ = yes.stdout_pipe(), .stdout_ = sp::PIPE});
  EXPECT_EQ(head.communicate({}, 10s).first, "y\ny\ny\n");
  EXPECT_EQ(yes.wait(10s), -SIGPIPE);
  EXPECT_EQ(source.wait(10s), 0);
}

TEST_F(Subprocess, APipeEndIsHandedToOneChildOnly) {
  sp::Popen source({"echo", "once"}, {.stdout_ = sp::PIPE});
  sp::PopenOptions options{.stdin_ = source.stdout_pipe(), .stdout_ = sp::PIPE};
  sp::Popen first({"cat"}, options);
  EXPECT_THROW(sp::Popen({"cat"}, options), std::invalid_argument);
  EXPECT_EQ(first.communicate({}, 10s).first, "once\n");
  source.wait();
}

TEST_F(Subprocess, DestroyingARunningPopenNeitherKillsNorBlocksNorLeavesAZombie) {
  const auto done_file = dir_ / "done";
  int pid = 0;
  const auto start = Clock::now();
  {
    sp::Popen p({"sh", "-c", "sleep 0.3; echo finished > " + done_file.string()});
    pid = p.pid();
  }
  EXPECT_LT(Clock::now() - start, 200ms);
  EXPECT_FALSE(process_gone(pid));
  EXPECT_TRUE(eventually_gone(pid)) << "nobody reaped the orphaned child";
  EXPECT_EQ(read_file(done_file), "finished\n");
  // Many at once, and a moved-to Popen orphans its previous child too.
  std::vector<int> pids;
  for (int i = 0; i < 20; ++i) {
    sp::Popen q({"sleep", "0.1"});
    pids.push_back(q.pid());
    q = sp::Popen({"true"});
    q.wait();
  }
  for (int orphan : pids) EXPECT_TRUE(eventually_gone(orphan)) << orphan;
}

TEST_F(Subprocess, ChildrenGetOnlyTheirThreeStreams) {
  // A descriptor this process opened without close-on-exec, at a number the child would keep.
  const int stray = ::fcntl(STDERR_FILENO, F_DUPFD, 60);
  ASSERT_GE(stray, 60);
  const auto r = sp::run(
      {"sh", "-c",
       "for fd in 3 4 5 " + std::to_string(stray) + "; do [ -e /proc/$$/fd/$fd ] && echo open $fd; done; echo checked"},
      {.capture_output = true});
  ::close(stray);
  EXPECT_EQ(r.stdout_output, "checked\n");
}

/// A line of /proc/<child>/status, as the child (cat) reads it.
std::uint64_t child_signal_set(const std::string& field) {
  const auto status = sp::run({"cat", "/proc/self/status"}, {.capture_output = true}).stdout_output;
  const auto at = status.find(field + ":");
  return at == std::string::npos ? ~0ULL : std::stoull(status.substr(at + field.size() + 1), nullptr, 16);
}

TEST_F(Subprocess, ChildrenGetDefaultSigpipeAndTheCallersSignalMask) {
  const auto bit = [](int signal_number) { return 1ULL << (signal_number - 1); };
  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &previous);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  ::pthread_sigmask(SIG_BLOCK, &usr2, nullptr);
  const std::uint64_t ignored = child_signal_set("SigIgn");
  const std::uint64_t blocked = child_signal_set("SigBlk");
  ::pthread_sigmask(SIG_UNBLOCK, &usr2, nullptr);
  ::sigaction(SIGPIPE, &previous, nullptr);
  EXPECT_EQ(ignored & bit(SIGPIPE), 0u) << "SIGPIPE stayed ignored in the child";
  EXPECT_EQ(blocked, bit(SIGUSR2)) << "the child should block what the starting thread blocked, and only that";
}

TEST_F(Subprocess, NoDescriptorLeaksAcrossEveryPath) {
  auto every_path = [] {
    sp::run({"sh", "-c", "echo x; echo y >&2"}, {.input = "in", .capture_output = true});
    sp::run({"cat"}, {.stdin_ = sp::DEVNULL, .stdout_ = sp::DEVNULL, .stderr_ = sp::STDOUT});
    EXPECT_THROW(sp::run({"sleep", "5"}, {.capture_output = true, .timeout = 20ms}), cohort::TimeoutError);
    EXPECT_THROW(sp::run({"false"}, {.capture_output = true, .check = true}), cohort::CalledProcessError);
    EXPECT_THROW(sp::run({"cohort-no-such-program"}, {.capture_output = true}), cohort::ProcessError);
    sp::Popen a({"echo", "a"}, {.stdout_ = sp::PIPE});
    sp::Popen b({"cat"}, {.stdin_ = a.stdout_pipe(), .stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
    b.communicate();
    a.wait();
    cohort::run(async_run_and_time_out());
  };
  every_path();  // whatever the libraries open once and keep (Asio's signal pipe) is open from here on
  const int fds = open_fd_count();
  for (int i = 0; i < 3; ++i) every_path();
  EXPECT_EQ(open_fd_count(), fds);
}

TEST_F(Subprocess, ConcurrentStartsFromManyThreads) {
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &good] {
      for (int i = 0; i < 10; ++i) {
        const std::string word = std::to_string(t) + "-" + std::to_string(i);
        const auto r =
            sp::run({"sh", "-c", "cat; echo " + word}, {.input = "x", .capture_output = true, .timeout = 20s});
        if (r.returncode == 0 && r.stdout_output == "x" + word + "\n") ++good;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 40);
}

// --- async_run ---------------------------------------------------------------------------------------

TEST_F(Subprocess, AsyncRunCapturesInputOutputAndReturncode) {
  const auto r =
      cohort::run(sp::async_run({"sh", "-c", "cat; echo err >&2; exit 2"}, {.input = "piped", .capture_output = true}));
  EXPECT_EQ(r.returncode, 2);
  EXPECT_EQ(r.stdout_output, "piped");
  EXPECT_EQ(r.stderr_output, "err\n");
  EXPECT_THROW(cohort::run(sp::async_run({"false"}, {.check = true})), cohort::CalledProcessError);
  EXPECT_THROW(cohort::run(sp::async_run({"cohort-no-such-program"})), cohort::ProcessError);
  const auto big = cohort::run(sp::async_run({"sh", "-c", "head -c 1048576 /dev/zero >&2; cat"},
                                             {.input = std::string(1 << 20, 'x'), .capture_output = true}));
  EXPECT_EQ(big.stdout_output, std::string(1 << 20, 'x'));
  EXPECT_EQ(big.stderr_output.size(), 1u << 20);
}

TEST_F(Subprocess, AsyncRunDoesNotBlockTheEventLoop) {
  const auto start = Clock::now();
  const auto [ticks, first, second] = cohort::run([]() -> cohort::task<std::tuple<int, int, int>> {
    // Ticks every 10 ms until both children (sleeping 0.5 s) are done: a loop blocked while they run
    // would tick about once per child.
    auto finished = std::make_shared<std::atomic<int>>(0);
    auto ticker = [](std::shared_ptr<std::atomic<int>> finished) -> cohort::task<int> {
      int ticks = 0;
      for (; finished->load() < 2; ++ticks) co_await cohort::sleep(10ms);
      co_return ticks;
    };
    auto child = [](std::shared_ptr<std::atomic<int>> finished) -> cohort::task<int> {
      const int code = co_await sleep_returncode("0.5");
      ++*finished;
      co_return code;
    };
    co_return co_await cohort::gather(ticker(finished), child(finished), child(finished));
  }());
  EXPECT_GE(ticks, 5);
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 0);
  EXPECT_LT(Clock::now() - start, 950ms) << "the two children did not run at the same time";
}

cohort::task<std::vector<std::string>> echo_in_parallel(int count) {
  std::vector<cohort::task<sp::CompletedProcess>> runs;
  for (int i = 0; i < count; ++i) {
    std::vector<std::string> args{"sh", "-c", "head -c 200000 /dev/zero >&2; echo " + std::to_string(i)};
    runs.push_back(sp::async_run(std::move(args), {.capture_output = true}));
  }
  std::vector<std::string> outputs;
  for (auto& result : co_await cohort::gather(std::move(runs))) {
    outputs.push_back(result.stdout_output + std::to_string(result.stderr_output.size()));
  }
  co_return outputs;
}

TEST_F(Subprocess, AsyncRunOnAMultiThreadedRuntime) {
#if defined(__SANITIZE_THREAD__)
  // Boost.Process's launcher allocates in the child (execution_context::notify_fork) before exec. glibc's
  // malloc is fork-safe, but GCC 12's ThreadSanitizer is not: a lock of its stack depot taken by another
  // thread at the moment of fork stays locked in the child, which then spins forever (seen 1 run in 8).
  GTEST_SKIP() << "ThreadSanitizer's allocator cannot allocate in a child forked from several threads";
#endif
  cohort::Runtime runtime(3);
  const auto outputs = runtime.run(echo_in_parallel(8));
  ASSERT_EQ(outputs.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(outputs[i], std::to_string(i) + "\n200000");
}

TEST_F(Subprocess, AsyncRunTimeoutKillsAndReapsTheChild) {
  const auto pid_file = dir_ / "pid";
  const auto start = Clock::now();
  EXPECT_THROW(cohort::run(sp::async_run({"sh", "-c", "echo $$ > " + pid_file.string() + "; exec sleep 30"},
                                         {.capture_output = true, .timeout = 300ms})),
               cohort::TimeoutError);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_TRUE(process_gone(std::stoi(read_file(pid_file))));
}

TEST_F(Subprocess, CancellingAsyncRunKillsTheChild) {
  const auto pid_file = dir_ / "pid";
  EXPECT_THROW(
      cohort::run(cohort::wait_for(
          sp::async_run({"sh", "-c", "echo $$ > " + pid_file.string() + "; exec sleep 30"}, {.capture_output = true}),
          300ms)),
      cohort::TimeoutError);
  EXPECT_TRUE(eventually_gone(std::stoi(read_file(pid_file))));
}

}  // namespace
