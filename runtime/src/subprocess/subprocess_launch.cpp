// Popen's start: the standard streams, the environment and the program to exec are prepared in the
// parent, then the child is forked and set up; run's options become Popen's here too.
//
// Starting a child goes through Boost.Process v2's default launcher (fork, a close-on-exec pipe that
// carries the child's errno back, the pid), with an initializer that does the whole child side itself:
// 1.81's child path calls exit() instead of _exit() when a setup step or exec fails (running this
// program's atexit handlers in the copy), never reaps such a child, and its close_range loop skips the
// descriptors below its error pipe. So everything the child needs is prepared before the fork, the child
// makes only system calls, reports a failure through Boost's pipe and leaves with _exit, and the parent
// reaps a child that failed.
#include "cohort/subprocess.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/process.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "cohort/error.hpp"
#include "subprocess/subprocess_internal.hpp"

namespace cohort::subprocess {

namespace bp = boost::process::v2;
using detail::SignalsBlocked;
using detail::UniqueFd;

namespace {

void reap_blocking(int pid) noexcept {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

/// Where the child's stream `index` comes from, prepared in the parent.
struct StreamPlan {
  int child_fd = -1;            // what the child dup2()s onto 0, 1 or 2; -1: inherit
  UniqueFd child_end;           // a pipe end or /dev/null that only the child needs; closed after the start
  UniqueFd parent_end;          // PIPE: this process's end
  PipeEnd* consumed = nullptr;  // a PipeEnd handed to the child, closed here once it started
};

/// Failure steps, sent with errno through Boost's pipe: step * step_unit + errno.
enum ChildStep : int { step_exec = 0, step_stdio = 1, step_cwd = 2 };
constexpr int step_unit = 1 << 16;

/// Boost.Process initializer: the child side, from the fork to the exec. Everything is prepared in the
/// parent, because between fork() and exec() a child of a multi-threaded program may only make system
/// calls (another thread may have held the allocator's lock at the fork).
struct ChildSetup {
  std::array<int, 3> stdio{-1, -1, -1};
  bool stderr_to_stdout = false;
  const char* cwd = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;              // nullptr: this process's environment
  const char* const* candidates = nullptr;  // the paths to try exec on, in order
  std::size_t candidate_count = 0;

  sigset_t signal_mask{};  // the starting thread's, restored just before exec

  template <class Launcher>
  bp::error_code on_exec_setup(Launcher& launcher, const bp::filesystem::path&, const char* const*&) {
    // The parent forked with every signal blocked, so that none runs one of its handlers in this copy
    // (an Asio signal handler would report it to the parent's event loop through their shared pipe).
    // Handlers end at exec anyway. Of the ignored signals, SIGPIPE and SIGXFSZ return to their defaults
    // (Python's restore_signals).
    for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
      struct sigaction current {};
      if (::sigaction(signal_number, nullptr, &current) == 0 && current.sa_handler != SIG_DFL &&
          current.sa_handler != SIG_IGN)
        ::signal(signal_number, SIG_DFL);
    }
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGXFSZ, SIG_DFL);

    // Boost 1.81 adds the write end of its error pipe last to the descriptors the child keeps.
    int report = launcher.fd_whitelist.size() > 3 ? launcher.fd_whitelist.back() : -1;
    if (report >= 0 && report < 3) report = ::fcntl(report, F_DUPFD_CLOEXEC, 3);

    // A source sitting on 0, 1 or 2 could be overwritten by another stream's dup2 before its own: lift
    // them all above 2 first.
    std::array<int, 3> source = stdio;
    for (int& fd : source) {
      if (fd >= 0 && fd < 3 && (fd = ::fcntl(fd, F_DUPFD, 3)) < 0) fail(report, step_stdio);
    }
    for (int target = 0; target < 3; ++target) {
      if (source[target] >= 0 && ::dup2(source[target], target) < 0) fail(report, step_stdio);
    }
    if (stderr_to_stdout && ::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) fail(report, step_stdio);
    if (cwd != nullptr && ::chdir(cwd) < 0) fail(report, step_cwd);

    // As Python's close_fds: the child gets its three streams and nothing else; the error pipe is
    // close-on-exec.
    if (report > 3) ::syscall(SYS_close_range, 3U, static_cast<unsigned>(report - 1), 0U);
    ::syscall(SYS_close_range, static_cast<unsigned>(std::max(report, 2) + 1), ~0U, 0U);

    ::pthread_sigmask(SIG_SETMASK, &signal_mask, nullptr);
    char* const* environment = envp != nullptr ? envp : environ;
    // As execvp: the first error other than "not there" is the one that counts.
    int first_error = 0;
    int last_error = ENOENT;
    for (std::size_t i = 0; i < candidate_count; ++i) {
      ::execve(candidates[i], argv, environment);
      last_error = errno;
      if (first_error == 0 && last_error != ENOENT && last_error != ENOTDIR) first_error = last_error;
    }
    errno = first_error != 0 ? first_error : last_error;
    fail(report, step_exec);
  }

  [[noreturn]] static void fail(int report, ChildStep step) noexcept {
    const int code = step * step_unit + errno;
    if (report >= 0) {
      [[maybe_unused]] const auto written = ::write(report, &code, sizeof code);
    }
    ::_exit(127);
  }
};

std::vector<std::string> exec_candidates(const std::string& program, const std::optional<Environment>& env) {
  if (program.find('/') != std::string::npos) return {program};
  // As os.get_exec_path: the PATH of the child's environment, or the default search path.
  std::string search = "/bin:/usr/bin";
  if (env) {
    if (auto it = env->find("PATH"); it != env->end()) search = it->second;
  } else if (const char* path = std::getenv("PATH")) {
    search = path;
  }
  std::vector<std::string> candidates;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t end = search.find(':', begin);
    std::string dir = search.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    candidates.push_back((dir.empty() ? std::string(".") : dir) + "/" + program);
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return candidates;
}

UniqueFd open_devnull() {
  UniqueFd fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!fd) throw ProcessError(fmt::format("Popen: cannot open /dev/null: {}", std::strerror(errno)));
  return fd;
}

StreamPlan plan_stream(const Stdio& stdio, int index, const char* name, UniqueFd& devnull) {
  StreamPlan plan;
  switch (stdio.kind()) {
    case Stdio::Kind::inherit:
      break;
    case Stdio::Kind::pipe: {
      int ends[2];
      if (::pipe2(ends, O_CLOEXEC) < 0)
        throw ProcessError(fmt::format("Popen: cannot create a pipe: {}", std::strerror(errno)));
      UniqueFd read_end(ends[0]);
      UniqueFd write_end(ends[1]);
      plan.child_end = index == 0 ? std::move(read_end) : std::move(write_end);
      plan.parent_end = index == 0 ? std::move(write_end) : std::move(read_end);
      plan.child_fd = plan.child_end.get();
      break;
    }
    case Stdio::Kind::devnull:
      if (!devnull) devnull = open_devnull();
      plan.child_fd = devnull.get();
      break;
    case Stdio::Kind::stdout_:
      if (index != 2) throw std::invalid_argument(fmt::format("Popen: STDOUT is only valid for stderr_, not {}", name));
      break;  // ChildSetup::stderr_to_stdout
    case Stdio::Kind::fd:
      if (stdio.fd() < 0 || ::fcntl(stdio.fd(), F_GETFD) < 0)
        throw std::invalid_argument(fmt::format("Popen: {} = {} is not an open descriptor", name, stdio.fd()));
      plan.child_fd = stdio.fd();
      break;
    case Stdio::Kind::pipe_end:
      if (!stdio.pipe_end() || stdio.pipe_end()->closed())
        throw std::invalid_argument(
            fmt::format("Popen: the PipeEnd given as {} is closed (was it already used?)", name));
      plan.child_fd = stdio.pipe_end()->fileno();
      plan.consumed = stdio.pipe_end().get();
      break;
  }
  return plan;
}

[[noreturn]] void throw_start_error(const std::vector<std::string>& args,
                                    const std::optional<std::filesystem::path>& cwd, int code) {
  const int error = code % step_unit;
  const int step = code / step_unit;
  const char* reason = std::strerror(error);
  if (step == step_cwd)
    throw ProcessError(
        fmt::format("Popen: cannot change to directory '{}' for '{}': {}", cwd ? cwd->string() : "", args[0], reason));
  if (step == step_stdio)
    throw ProcessError(fmt::format("Popen: cannot set up the standard streams of '{}': {}", args[0], reason));
  throw ProcessError(fmt::format("Popen: cannot run '{}': {}", args[0], reason));
}

/// Starts the child; its pid and a pidfd that watches it.
std::pair<int, UniqueFd> start_child(const std::vector<std::string>& args,
                                     const std::optional<std::filesystem::path>& cwd, ChildSetup& setup) {
  // Boost's launcher tells an execution context about the fork; a private one that never runs keeps
  // the program's event loops out of it.
  boost::asio::io_context context(1);
  bp::default_process_launcher launcher;
  bp::error_code ec;
  const std::vector<std::string> no_arguments;  // the child execs with ChildSetup's argv
  auto process = [&] {
    const SignalsBlocked blocked;
    setup.signal_mask = blocked.previous();
    return launcher(context.get_executor(), ec, bp::filesystem::path(args[0]), no_arguments, setup);
  }();
  if (ec) {
    if (launcher.pid > 0) reap_blocking(launcher.pid);  // the child reported its failure and _exit()ed
    if (launcher.pid > 0) throw_start_error(args, cwd, ec.value());
    throw ProcessError(fmt::format("Popen: cannot start '{}': {}", args[0], ec.message()));
  }
  const int pid = process.id();
  process.detach();  // Boost's handle would kill the child when destroyed; ours is the pidfd below
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    reap_blocking(pid);
    throw ProcessError(fmt::format("Popen: pidfd_open failed for '{}': {}", args[0], std::strerror(error)));
  }
  return {pid, std::move(pidfd)};
}

}  // namespace

Popen::Popen(std::vector<std::string> args, PopenOptions options) {
  if (args.empty() || args[0].empty()) throw std::invalid_argument("Popen: args must start with a program");

  UniqueFd devnull;
  std::array<StreamPlan, 3> streams{plan_stream(options.stdin_, 0, "stdin_", devnull),
                                    plan_stream(options.stdout_, 1, "stdout_", devnull),
                                    plan_stream(options.stderr_, 2, "stderr_", devnull)};

  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_entries;
  std::vector<char*> envp;
  if (options.env) {
    for (const auto& [key, value] : *options.env) {
      if (key.empty() || key.find('=') != std::string::npos)
        throw std::invalid_argument(fmt::format("Popen: '{}' is not a valid environment variable name", key));
      env_entries.push_back(key + "=" + value);
    }
    for (auto& entry : env_entries) envp.push_back(entry.data());
    envp.push_back(nullptr);
  }
  const std::vector<std::string> candidates = exec_candidates(args[0], options.env);
  std::vector<const char*> candidate_paths;
  for (const auto& candidate : candidates) candidate_paths.push_back(candidate.c_str());
  const std::string cwd = options.cwd ? options.cwd->string() : std::string();

  ChildSetup setup;
  for (std::size_t i = 0; i < 3; ++i) setup.stdio[i] = streams[i].child_fd;
  setup.stderr_to_stdout = options.stderr_.kind() == Stdio::Kind::stdout_;
  setup.cwd = options.cwd ? cwd.c_str() : nullptr;
  setup.argv = argv.data();
  setup.envp = options.env ? envp.data() : nullptr;
  setup.candidates = candidate_paths.data();
  setup.candidate_count = candidate_paths.size();

  auto [pid, pidfd] = start_child(args, options.cwd, setup);
  state_ = std::make_unique<detail::PopenState>(std::move(args), pid, std::move(pidfd));
  // The child has its copies now; the ends it alone needs close with `streams`.
  for (auto& stream : streams)
    if (stream.consumed) stream.consumed->close();
  stdin_ = PipeEnd(std::move(streams[0].parent_end));
  stdout_ = PipeEnd(std::move(streams[1].parent_end));
  stderr_ = PipeEnd(std::move(streams[2].parent_end));
}

}  // namespace cohort::subprocess

namespace cohort::detail {

subprocess::PopenOptions popen_options_for_run(subprocess::RunOptions& options, std::string_view what) {
  using subprocess::PIPE;
  using subprocess::Stdio;
  if (options.input) {
    if (options.stdin_.kind() != Stdio::Kind::inherit)
      throw std::invalid_argument(fmt::format("{}: stdin_ and input may not both be used", what));
    options.stdin_ = PIPE;
  }
  if (options.capture_output) {
    if (options.stdout_.kind() != Stdio::Kind::inherit || options.stderr_.kind() != Stdio::Kind::inherit)
      throw std::invalid_argument(fmt::format("{}: stdout_ and stderr_ may not be used with capture_output", what));
    options.stdout_ = PIPE;
    options.stderr_ = PIPE;
  }
  return subprocess::PopenOptions{.stdin_ = std::move(options.stdin_),
                                  .stdout_ = std::move(options.stdout_),
                                  .stderr_ = std::move(options.stderr_),
                                  .cwd = std::move(options.cwd),
                                  .env = std::move(options.env)};
}

}  // namespace cohort::detail
