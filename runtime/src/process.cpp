// Process and the registry of this process's children.
//
// Every started child is watched through a pidfd: waiting polls it (so join(timeout) needs no busy loop
// and no SIGCHLD handler, which belongs to the program), signals go through it (so a pid reused after the
// child was reaped is never hit), and the child is reaped under its own mutex exactly once.
#include "cohort/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <iostream>
#include <mutex>
#include <new>

#include <fmt/format.h>

#include "cohort/detail/unique_fd.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"

namespace cohort {

namespace detail {

/// A started child: its pid, the pidfd that watches it, and its exit code once reaped.
class ChildProcess {
 public:
  ChildProcess(int pid, UniqueFd pidfd, ProcessInfo info) : pid_(pid), pidfd_(std::move(pidfd)), info_(std::move(info)) {}

  int pid() const noexcept { return pid_; }
  const ProcessInfo& info() const noexcept { return info_; }

  /// Reaps the child if it has ended; its exit code then, nullopt while it runs.
  std::optional<int> poll() {
    std::lock_guard lock(mutex_);
    return reap(WNOHANG);
  }

  /// Waits until the child ends or the deadline passes; true if it ended.
  bool wait_until(Clock::time_point deadline) {
    for (;;) {
      if (poll()) return true;
      const auto left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) return false;
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      pollfd watch{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
      const int ready = ::poll(&watch, 1, static_cast<int>(std::min<long long>(ms, 60'000)));
      if (ready < 0 && errno != EINTR) throw ProcessError(fmt::format("Process.join: poll failed: {}", std::strerror(errno)));
    }
  }

  void signal(int signal_number) {
    std::lock_guard lock(mutex_);
    if (exitcode_) return;
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signal_number, nullptr, 0) != 0 && errno != ESRCH)
      throw ProcessError(fmt::format("cannot signal process {}: {}", pid_, std::strerror(errno)));
  }

 private:
  std::optional<int> reap(int options) {
    if (exitcode_) return exitcode_;
    int status = 0;
    int reaped = 0;
    do {
      reaped = ::waitpid(pid_, &status, options);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == 0) return std::nullopt;
    if (reaped < 0)
      throw ProcessError(fmt::format("cannot wait for process {}: {} (is SIGCHLD ignored?)", pid_, std::strerror(errno)));
    exitcode_ = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    pidfd_.reset();
    return exitcode_;
  }

  const int pid_;
  std::mutex mutex_;  // guards reaping: a pid is waited for exactly once
  UniqueFd pidfd_;
  std::optional<int> exitcode_;
  ProcessInfo info_;
};

}  // namespace detail

namespace {

/// What this process knows about itself; replaced in a child right after fork.
struct Self {
  std::string name = "MainProcess";
  bool daemon = false;
  std::vector<int> identity;  // empty in the main process; {2, 1} in "Process-2:1"
  std::optional<ProcessInfo> parent;
  std::atomic<int> started{0};  // children started so far, for default names
};

/// This process's children that have not been reaped yet.
struct Registry {
  std::mutex mutex;
  std::vector<std::shared_ptr<detail::ChildProcess>> children;
  bool exit_handler_installed = false;
};

// Never destroyed: children may be reaped while the program's statics are torn down.
Self& self() {
  static auto* instance = new Self;
  return *instance;
}
Registry& registry() {
  static auto* instance = new Registry;
  return *instance;
}

/// In a child right after fork(), while it has one thread: it is a new process with no children, and a
/// lock another thread of the parent held at the fork would stay locked forever, so it gets a fresh one.
void become_child(const ProcessOptions& options, const std::vector<int>& identity, ProcessInfo parent) {
  auto& me = self();
  me.name = options.name;
  me.daemon = options.daemon;
  me.identity = identity;
  me.parent = std::move(parent);
  me.started.store(0);
  auto& children = registry();
  new (&children.mutex) std::mutex;
  children.children.clear();
}

std::vector<std::shared_ptr<detail::ChildProcess>> snapshot_children() {
  std::lock_guard lock(registry().mutex);
  return registry().children;
}

/// With the registry's mutex held.
void erase_reaped_children() {
  std::erase_if(registry().children, [](const auto& child) { return child->poll().has_value(); });
}

void forget_reaped_children() {
  std::lock_guard lock(registry().mutex);
  erase_reaped_children();
}

/// At exit, as Python does: daemon children are terminated, then every child is waited for.
void join_children_at_exit() {
  try {
    const auto children = snapshot_children();
    for (const auto& child : children)
      if (child->info().daemon) child->signal(SIGTERM);
    for (const auto& child : children) child->wait_until(detail::Clock::time_point::max());
  } catch (const std::exception& e) {
    detail::log_error(fmt::format("while joining children at exit: {}", e.what()));
  }
}

void register_child(std::shared_ptr<detail::ChildProcess> child) {
  std::lock_guard lock(registry().mutex);
  erase_reaped_children();
  registry().children.push_back(std::move(child));
  if (!registry().exit_handler_installed) {
    registry().exit_handler_installed = true;
    std::atexit(join_children_at_exit);
  }
}

std::string default_name(const std::vector<int>& identity) {
  std::string name = "Process-";
  for (std::size_t i = 0; i < identity.size(); ++i) name += (i ? ":" : "") + std::to_string(identity[i]);
  return name;
}

std::string current_exception_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (!type) return "unknown exception";
  int status = 0;
  char* demangled = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : type->name();
  std::free(demangled);
  return name;
}

/// In the child, before its target runs: signals back to their defaults, so that terminate() ends the
/// child even if the parent's event loop had claimed SIGTERM and SIGINT; no signal blocked.
void reset_signals() {
  for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) ::signal(signal_number, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace

Process::Process() : Process(ProcessOptions{}) {}

Process::Process(ProcessOptions options) : options_(std::move(options)) {
  identity_ = self().identity;
  identity_.push_back(self().started.fetch_add(1) + 1);
  if (options_.name.empty()) options_.name = default_name(identity_);
  // As in Python, a child of a daemon would be a daemon too, but a daemon may not have children.
}

Process::~Process() = default;

void Process::check_open(const char* what) const {
  if (closed_) throw ProcessError(fmt::format("Process.{}: process object is closed", what));
}

void Process::set_daemon(bool daemon) {
  check_open("daemon");
  if (child_) throw ProcessError("Process.daemon: cannot change a process that has started");
  options_.daemon = daemon;
}

void Process::run() {
  if (target_) (*target_)();
}

void Process::start() {
  check_open("start");
  if (child_) throw ProcessError(fmt::format("Process.start: {} was already started", options_.name));
  if (self().daemon) throw ProcessError("Process.start: daemonic processes are not allowed to have children");

  // Whatever sits in the stdio buffers now would be written twice: by the parent and by the child.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const int parent_pid = ::getpid();
  const int pid = ::fork();
  if (pid < 0) throw ProcessError(fmt::format("Process.start: fork failed: {}", std::strerror(errno)));
  if (pid == 0) {
    become_child(options_, identity_, ProcessInfo{self().name, parent_pid, self().daemon});
    if (options_.daemon) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent_pid) ::kill(::getpid(), SIGKILL);  // the parent died before prctl took effect
    }
    run_child();
  }

  detail::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw ProcessError(fmt::format("Process.start: pidfd_open failed: {}", std::strerror(error)));
  }
  child_ = std::make_shared<detail::ChildProcess>(pid, std::move(pidfd), ProcessInfo{options_.name, pid, options_.daemon});
  register_child(child_);
}

void Process::run_child() noexcept {
  detail::set_process_name_after_fork(options_.name);
  reset_signals();
  int code = 0;
  try {
    run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Process %s:\n%s: %s\n", options_.name.c_str(), current_exception_type().c_str(), e.what());
    code = 1;
  } catch (...) {
    std::fprintf(stderr, "Process %s:\n%s\n", options_.name.c_str(), current_exception_type().c_str());
    code = 1;
  }
  join_children_at_exit();  // as Python's child does before it exits: its own children first
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  ::_exit(code);
}

void Process::join() { join_until(detail::Clock::time_point::max()); }

bool Process::join_until(detail::Clock::time_point deadline) {
  check_open("join");
  if (!child_) throw ProcessError("Process.join: can only join a started process");
  const bool ended = child_->wait_until(deadline);
  if (ended) forget_reaped_children();
  return ended;
}

bool Process::is_alive() {
  check_open("is_alive");
  return child_ && !child_->poll();
}

std::optional<int> Process::exitcode() {
  check_open("exitcode");
  if (!child_) return std::nullopt;
  return child_->poll();
}

void Process::terminate() {
  check_open("terminate");
  if (child_) child_->signal(SIGTERM);
}

void Process::kill() {
  check_open("kill");
  if (child_) child_->signal(SIGKILL);
}

int Process::pid() const {
  check_open("pid");
  return child_ ? child_->pid() : 0;
}

void Process::close() {
  if (closed_) return;
  if (child_ && !child_->poll())
    throw ProcessError(fmt::format("Process.close: cannot close {}: it is still running", options_.name));
  if (child_) forget_reaped_children();
  child_.reset();
  target_.reset();
  closed_ = true;
}

ProcessInfo current_process() { return ProcessInfo{self().name, ::getpid(), self().daemon}; }

std::optional<ProcessInfo> parent_process() { return self().parent; }

std::vector<ProcessInfo> active_children() {
  forget_reaped_children();
  std::vector<ProcessInfo> running;
  for (const auto& child : snapshot_children()) running.push_back(child->info());
  return running;
}

int cpu_count() { return std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN))); }

}  // namespace cohort
