// Popen, run and the pipes to a child: the blocking side of subprocess.
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
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
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
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cohort/error.hpp"

namespace cohort::subprocess {

namespace bp = boost::process::v2;
using detail::Clock;
using detail::UniqueFd;

namespace {

constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t write_chunk = 1024 * 1024;  // more than a pipe holds: each write fills it

/// Puts this process's end of a pipe in non-blocking mode for a scope (the mode belongs to this end
/// alone: the child's end is another open file).
class NonBlocking {
 public:
  explicit NonBlocking(const PipeEnd& end)
      : end_(end), fd_(end.fileno()), flags_(fd_ >= 0 ? ::fcntl(fd_, F_GETFL) : -1) {
    if (flags_ >= 0 && ::fcntl(fd_, F_SETFL, flags_ | O_NONBLOCK) < 0) flags_ = -1;
  }
  ~NonBlocking() {
    if (flags_ >= 0 && end_.fileno() == fd_) ::fcntl(fd_, F_SETFL, flags_);
  }
  NonBlocking(const NonBlocking&) = delete;
  NonBlocking& operator=(const NonBlocking&) = delete;

 private:
  const PipeEnd& end_;
  int fd_;
  int flags_;
};

int decode_status(int status) { return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status); }

void reap_blocking(int pid) noexcept {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

/// Blocks every signal in this thread for a scope.
class SignalsBlocked {
 public:
  SignalsBlocked() noexcept {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous_);
  }
  ~SignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

  const sigset_t& previous() const noexcept { return previous_; }

 private:
  sigset_t previous_{};
};

/// Children whose Popen was destroyed while they ran. One thread, started with the first of them, sleeps
/// in poll() on their pidfds and an eventfd, and reaps each child as it ends.
class OrphanReaper {
 public:
  static OrphanReaper& instance() {
    static auto* reaper = new OrphanReaper;  // never destroyed: its thread outlives the program's statics
    return *reaper;
  }

  /// Throws only if the system is out of memory, threads or descriptors; the child is then left to be
  /// reaped by a later adopt() or, at the latest, by init when this program ends.
  void adopt(int pid, UniqueFd pidfd) {
    std::lock_guard lock(mutex_);
    orphans_.push_back(Orphan{pid, std::move(pidfd)});
    if (!wake_) wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) return;
    if (!thread_started_) {
      start_thread();
      thread_started_ = true;
    } else {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto written = ::write(wake_.get(), &one, sizeof one);
    }
  }

 private:
  struct Orphan {
    int pid;
    UniqueFd pidfd;
  };

  OrphanReaper() {
    // A forked child has none of these children and not the thread: it starts over. Holding the mutex
    // across fork() keeps the list whole in the copy.
    ::pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                     [] {
                       auto& reaper = instance();
                       for (auto& orphan : reaper.orphans_) orphan.pidfd.reset();
                       reaper.orphans_.clear();
                       reaper.wake_.reset();
                       reaper.thread_started_ = false;
                       reaper.mutex_.unlock();
                     });
  }

  void start_thread() {
    // The thread inherits a mask that blocks every signal, so that none meant for the program lands on it.
    const SignalsBlocked blocked;
    std::thread([this] { run(); }).detach();
  }

  [[noreturn]] void run() {
    std::vector<pollfd> watched;
    for (;;) {
      watched.clear();
      {
        std::lock_guard lock(mutex_);
        watched.push_back(pollfd{.fd = wake_.get(), .events = POLLIN, .revents = 0});
        for (const auto& orphan : orphans_)
          watched.push_back(pollfd{.fd = orphan.pidfd.get(), .events = POLLIN, .revents = 0});
      }
      if (::poll(watched.data(), watched.size(), -1) < 0) continue;  // EINTR
      std::uint64_t count = 0;
      [[maybe_unused]] const auto drained = ::read(watched.front().fd, &count, sizeof count);
      std::lock_guard lock(mutex_);
      std::erase_if(orphans_, [](const Orphan& orphan) {
        int reaped = 0;
        do {
          reaped = ::waitpid(orphan.pid, nullptr, WNOHANG);
        } while (reaped < 0 && errno == EINTR);
        return reaped != 0;  // reaped, or not ours to reap any more (ECHILD)
      });
    }
  }

  std::mutex mutex_;
  std::vector<Orphan> orphans_;
  UniqueFd wake_;
  bool thread_started_ = false;
};

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

}  // namespace cohort::subprocess

namespace cohort::detail {

using subprocess::decode_status;
using subprocess::OrphanReaper;

/// A started child: reaped exactly once, under the mutex; its pidfd stays open until the Popen goes, so
/// a waiter polling it never sees a reused descriptor number.
class PopenState {
 public:
  PopenState(std::vector<std::string> args, int pid, UniqueFd pidfd)
      : args_(std::move(args)), pid_(pid), pidfd_(std::move(pidfd)) {}
  PopenState(const PopenState&) = delete;
  PopenState& operator=(const PopenState&) = delete;

  ~PopenState() {
    try {
      if (poll()) return;
      OrphanReaper::instance().adopt(pid_, std::move(pidfd_));
    } catch (const std::exception&) {
      // Not ours to reap (SIGCHLD ignored, or reaped behind our back), or no resources left to watch it.
    }
  }

  const std::vector<std::string>& args() const noexcept { return args_; }
  int pid() const noexcept { return pid_; }
  int pidfd() const noexcept { return pidfd_.get(); }

  std::optional<int> returncode() const {
    std::lock_guard lock(mutex_);
    return returncode_;
  }

  std::optional<int> poll() {
    std::lock_guard lock(mutex_);
    if (returncode_) return returncode_;
    int status = 0;
    int reaped = 0;
    do {
      reaped = ::waitpid(pid_, &status, WNOHANG);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == 0) return std::nullopt;
    if (reaped < 0)
      throw ProcessError(fmt::format("Popen: cannot wait for '{}' (pid {}): {} (is SIGCHLD ignored?)", args_[0], pid_,
                                     std::strerror(errno)));
    returncode_ = decode_status(status);
    return returncode_;
  }

  /// True once the child has ended and been reaped.
  bool wait_until(Clock::time_point deadline, const char* what) {
    for (;;) {
      if (poll()) return true;
      const auto left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) return false;
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      pollfd watch{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
      if (::poll(&watch, 1, static_cast<int>(std::min<long long>(ms, 60'000))) < 0 && errno != EINTR)
        throw ProcessError(fmt::format("{}: poll failed: {}", what, std::strerror(errno)));
    }
  }

  void send_signal(int signal_number) {
    std::lock_guard lock(mutex_);
    if (returncode_) return;
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signal_number, nullptr, 0) != 0 && errno != ESRCH)
      throw ProcessError(
          fmt::format("Popen.send_signal: cannot signal '{}' (pid {}): {}", args_[0], pid_, std::strerror(errno)));
  }

  // communicate's progress, kept across a timeout so that the next call carries on.
  bool communication_started = false;
  std::string pending_input;  // what a timed-out call had not written yet
  std::string stdout_output;
  std::string stderr_output;

 private:
  const std::vector<std::string> args_;
  const int pid_;
  UniqueFd pidfd_;
  mutable std::mutex mutex_;
  std::optional<int> returncode_;
};

std::string command_line(const std::vector<std::string>& args) {
  std::string line;
  for (const auto& arg : args) {
    if (!line.empty()) line += ' ';
    line += arg;
  }
  return line;
}

long write_without_sigpipe(int fd, const char* data, std::size_t size) noexcept {
  // SIGPIPE for a write is sent to the writing thread: blocked here, it stays pending and is taken
  // back with sigtimedwait, unless one was pending already (then it is not ours to swallow).
  sigset_t pipe_signal;
  sigset_t previous;
  sigset_t pending;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
  ssize_t written = 0;
  do {
    written = ::write(fd, data, size);
  } while (written < 0 && errno == EINTR);
  const int error = errno;
  if (written < 0 && error == EPIPE && !was_pending) {
    const timespec no_wait{};
    while (::sigtimedwait(&pipe_signal, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return written < 0 ? -error : static_cast<long>(written);
}

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

namespace cohort::subprocess {

// --- PipeEnd -------------------------------------------------------------------------------------------

void PipeEnd::check_open(const char* what) const {
  if (!fd_) throw ProcessError(fmt::format("PipeEnd.{}: the pipe is closed", what));
}

bool PipeEnd::fill(const char* what) {
  const std::size_t before = buffer_.size();
  buffer_.resize(before + read_chunk);
  ssize_t n = 0;
  do {
    n = ::read(fd_.get(), buffer_.data() + before, read_chunk);
  } while (n < 0 && errno == EINTR);
  const int error = errno;
  buffer_.resize(before + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  if (n < 0) throw ProcessError(fmt::format("PipeEnd.{}: {}", what, std::strerror(error)));
  return n > 0;
}

void PipeEnd::write(std::string_view data) {
  check_open("write");
  std::size_t done = 0;
  while (done < data.size()) {
    const long n = detail::write_without_sigpipe(fd_.get(), data.data() + done, data.size() - done);
    if (n == -EPIPE) throw EOFError("PipeEnd.write: the reading end is closed");
    if (n < 0) throw ProcessError(fmt::format("PipeEnd.write: {}", std::strerror(static_cast<int>(-n))));
    done += static_cast<std::size_t>(n);
  }
}

std::string PipeEnd::read() {
  check_open("read");
  while (fill("read")) {
  }
  return std::exchange(buffer_, {});
}

std::string PipeEnd::read(std::size_t size) {
  check_open("read");
  while (buffer_.size() < size && fill("read")) {
  }
  std::string head = buffer_.substr(0, size);
  buffer_.erase(0, head.size());
  return head;
}

std::string PipeEnd::readline() {
  check_open("readline");
  std::size_t scanned = 0;
  for (;;) {
    if (const auto newline = buffer_.find('\n', scanned); newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline + 1);
      buffer_.erase(0, newline + 1);
      return line;
    }
    scanned = buffer_.size();
    if (!fill("readline")) return std::exchange(buffer_, {});
  }
}

// --- Popen ---------------------------------------------------------------------------------------------

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

Popen::~Popen() = default;
Popen::Popen(Popen&&) noexcept = default;
Popen& Popen::operator=(Popen&&) noexcept = default;

detail::PopenState& Popen::state() const {
  if (!state_) throw ProcessError("Popen: this object was moved from");
  return *state_;
}

const std::vector<std::string>& Popen::args() const { return state().args(); }
int Popen::pid() const { return state().pid(); }
int Popen::pidfd() const { return state().pidfd(); }
std::optional<int> Popen::returncode() const { return state().returncode(); }
std::optional<int> Popen::poll() { return state().poll(); }
int Popen::wait() { return wait_for(std::nullopt, "Popen.wait"); }

int Popen::wait_for(std::optional<Clock::duration> timeout, const char* what) {
  auto& child = state();
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  if (!child.wait_until(deadline, what))
    detail::throw_timeout(fmt::format("{}: command '{}'", what, detail::command_line(child.args())), *timeout);
  return *child.returncode();
}

void Popen::send_signal(int signal_number) { state().send_signal(signal_number); }
void Popen::terminate() { send_signal(SIGTERM); }
void Popen::kill() { send_signal(SIGKILL); }

PipeEnd Popen::stdout_pipe() {
  if (!stdout_)
    throw ProcessError(fmt::format("Popen.stdout_pipe: stdout_ of '{}' is not an open PIPE (or was already taken)",
                                   detail::command_line(args())));
  if (!stdout_.buffer_.empty())
    throw ProcessError(
        "Popen.stdout_pipe: stdout_ holds data already read from the pipe, which the next process would miss");
  return std::move(stdout_);
}

std::pair<std::string, std::string> Popen::communicate(std::string_view input) {
  return communicate_for(input, std::nullopt);
}

std::pair<std::string, std::string> Popen::communicate_for(std::string_view input,
                                                           std::optional<Clock::duration> timeout) {
  auto& child = state();
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  if (child.communication_started && !input.empty())
    throw std::invalid_argument("Popen.communicate: cannot send input after starting communication");
  if (!input.empty() && !stdin_) throw std::invalid_argument("Popen.communicate: input needs stdin_ = PIPE");
  const bool continuing = child.communication_started;
  if (!continuing) {
    child.communication_started = true;
    // What readline() pulled in ahead belongs to the output.
    child.stdout_output = std::exchange(stdout_.buffer_, {});
    child.stderr_output = std::exchange(stderr_.buffer_, {});
  }
  // The caller's input is written straight from its buffer; only what a timeout leaves unwritten is
  // copied, for the next call.
  std::string carried = std::exchange(child.pending_input, {});
  std::string_view unwritten = continuing ? std::string_view(carried) : input;
  if (unwritten.empty()) stdin_.close();
  auto time_out = [&]() {
    if (stdin_) child.pending_input.assign(unwritten);
    detail::throw_timeout(fmt::format("Popen.communicate: command '{}'", detail::command_line(child.args())), *timeout);
  };

  // Non-blocking while communicate feeds it, so that one write fills whatever room the pipe has instead
  // of the PIPE_BUF bytes poll() guarantees; blocking again afterwards, for stdin_.write().
  const NonBlocking feeding(stdin_);
  std::string chunk(read_chunk, '\0');
  for (;;) {
    std::array<pollfd, 3> watched{};
    std::array<PipeEnd*, 3> ends{};
    std::size_t count = 0;
    if (stdin_ && !unwritten.empty()) {
      watched[count] = pollfd{.fd = stdin_.fileno(), .events = POLLOUT, .revents = 0};
      ends[count++] = &stdin_;
    }
    for (PipeEnd* end : {&stdout_, &stderr_}) {
      if (!*end) continue;
      watched[count] = pollfd{.fd = end->fileno(), .events = POLLIN, .revents = 0};
      ends[count++] = end;
    }
    if (count == 0) break;

    int wait_ms = -1;
    if (timeout) {
      const auto left = std::max(deadline - Clock::now(), Clock::duration::zero());
      wait_ms =
          static_cast<int>(std::min<long long>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), 60'000));
    }
    const int ready = ::poll(watched.data(), count, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw ProcessError(fmt::format("Popen.communicate: poll failed: {}", std::strerror(errno)));
    }
    if (ready == 0) {
      if (Clock::now() < deadline) continue;
      time_out();
    }

    for (std::size_t i = 0; i < count; ++i) {
      if (watched[i].revents == 0) continue;
      if (ends[i] == &stdin_) {
        const long n =
            detail::write_without_sigpipe(stdin_.fileno(), unwritten.data(), std::min(unwritten.size(), write_chunk));
        if (n >= 0) {
          unwritten.remove_prefix(static_cast<std::size_t>(n));
        } else if (n == -EPIPE) {
          unwritten = {};  // the child stopped reading: as Python, not an error
        } else if (n != -EAGAIN) {
          throw ProcessError(
              fmt::format("Popen.communicate: writing stdin failed: {}", std::strerror(static_cast<int>(-n))));
        }
        if (unwritten.empty()) stdin_.close();
        continue;
      }
      ssize_t n = 0;
      do {
        n = ::read(ends[i]->fileno(), chunk.data(), chunk.size());
      } while (n < 0 && errno == EINTR);
      if (n < 0) throw ProcessError(fmt::format("Popen.communicate: reading failed: {}", std::strerror(errno)));
      if (n == 0) {
        ends[i]->close();
      } else {
        (ends[i] == &stdout_ ? child.stdout_output : child.stderr_output)
            .append(chunk.data(), static_cast<std::size_t>(n));
      }
    }
  }

  if (!child.wait_until(deadline, "Popen.communicate")) time_out();
  return {std::exchange(child.stdout_output, {}), std::exchange(child.stderr_output, {})};
}

// --- run -----------------------------------------------------------------------------------------------

void CompletedProcess::check_returncode() const {
  if (returncode != 0) throw CalledProcessError(returncode, args, stdout_output, stderr_output);
}

CompletedProcess run(std::vector<std::string> args, RunOptions options) {
  const Timeout timeout = options.timeout;
  const bool check = options.check;
  const std::string input = options.input ? std::move(*options.input) : std::string();
  Popen process(std::move(args), detail::popen_options_for_run(options, "subprocess.run"));
  std::pair<std::string, std::string> output;
  try {
    output = timeout ? process.communicate(input, *timeout) : process.communicate(input);
  } catch (const TimeoutError&) {
    process.kill();
    process.wait();
    detail::throw_timeout(fmt::format("subprocess.run: command '{}'", detail::command_line(process.args())),
                          detail::to_clock_duration(*timeout));
  } catch (...) {
    process.kill();
    process.wait();
    throw;
  }
  CompletedProcess result{process.args(), *process.returncode(), std::move(output.first), std::move(output.second)};
  if (check) result.check_returncode();
  return result;
}

}  // namespace cohort::subprocess
