// Process and the registry of this process's children.
//
// Every started child is watched through a pidfd: waiting polls it (so join(timeout) needs no busy loop
// and no SIGCHLD handler, which belongs to the program), signals go through it (so a pid reused after the
// child was reaped is never hit), and the child is reaped under its own mutex exactly once.
#include "cohort/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

#include "cohort/detail/fd_transfer.hpp"
#include "cohort/detail/unique_fd.hpp"
#include "process/process_internal.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"

namespace cohort {

namespace detail {

int ChildProcess::watch_fd() {
  std::lock_guard lock(mutex_);
  return status_ ? status_.get() : pidfd_.get();
}

std::optional<int> ChildProcess::poll() {
  std::lock_guard lock(mutex_);
  return reap_locked();
}

bool ChildProcess::wait_until(Clock::time_point deadline) {
  for (;;) {
    if (poll()) return true;
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return false;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd watch{.fd = watch_fd(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&watch, 1, static_cast<int>(std::min<long long>(ms, 60'000)));
    if (ready < 0 && errno != EINTR) throw ProcessError(fmt::format("Process.join: poll failed: {}", std::strerror(errno)));
  }
}

void ChildProcess::signal(int signal_number) {
  std::lock_guard lock(mutex_);
  if (exitcode_ || !pidfd_) return;
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signal_number, nullptr, 0) != 0 && errno != ESRCH)
    throw ProcessError(fmt::format("cannot signal process {}: {}", pid_, std::strerror(errno)));
}

std::optional<int> ChildProcess::reap_locked() {
  if (exitcode_) return exitcode_;
  int status = 0;
  if (!server_child_) {
    int reaped = 0;
    do {
      reaped = ::waitpid(pid_, &status, WNOHANG);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == 0) return std::nullopt;
    if (reaped < 0)
      throw ProcessError(fmt::format("cannot wait for process {}: {} (is SIGCHLD ignored?)", pid_, std::strerror(errno)));
  } else {
    if (status_) {
      // The fork server sends the wait status (4 bytes, one write) when it reaps the child.
      ssize_t n = 0;
      do {
        n = ::recv(status_.get(), &status, sizeof status, MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
      if (n != sizeof status) {
        status_.reset();
        log_error(fmt::format("the fork server ended before process {} did: its exit status is lost", pid_));
      }
    }
    if (!status_) {
      // Without the server, the pidfd still tells when the child ends, though not how.
      pollfd watch{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
      if (::poll(&watch, 1, 0) <= 0) return std::nullopt;
      status = W_EXITCODE(255, 0);
    }
  }
  exitcode_ = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
  pidfd_.reset();
  status_.reset();
  return exitcode_;
}

}  // namespace detail

namespace {

/// What this process knows about itself; replaced in a child right after fork.
struct Self {
  std::string name = "MainProcess";
  bool daemon = false;
  std::vector<int> identity;  // empty in the main process; {2, 1} in "Process-2:1"
  std::optional<ProcessInfo> parent;
  std::atomic<int> started{0};  // children started so far, for default names
  std::atomic<int> start_method{-1};  // a StartMethod, or -1: not chosen
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

/// A worker environment without init() would run main() again: stop before it starts processes itself.
void check_not_uninitialized_worker() {
  if (!detail::init_was_called() && std::getenv(detail::worker_variable))
    throw ProcessError(
        "this process was started as a cohort worker, but main() did not call cohort::init(argc, argv) first");
}

}  // namespace

namespace detail {

void throw_not_remote_callable(std::string_view type) {
  throw ProcessError(fmt::format(
      "Process.start: the target ({}) cannot be named in another process; under the spawn and forkserver start "
      "methods pass a free function, a static member function or a captureless lambda, or use StartMethod::fork",
      type));
}

void throw_not_transferable(std::string_view type) {
  throw ProcessError(fmt::format(
      "Process.start: argument type {} cannot be serialized, so it cannot cross to a spawn or forkserver child; give "
      "it a cereal serialize() function, or use StartMethod::fork",
      type));
}

void become_child(const std::string& name, bool daemon, const std::vector<int>& identity, ProcessInfo parent) {
  auto& me = self();
  me.name = name;
  me.daemon = daemon;
  me.identity = identity;
  me.parent = std::move(parent);
  me.started.store(0);
  // A lock another thread of the parent held at the fork would stay locked forever: a fresh one.
  auto& children = registry();
  new (&children.mutex) std::mutex;
  children.children.clear();
  reset_fork_server_lock_after_fork();
}

void register_child(std::shared_ptr<ChildProcess> child) {
  std::lock_guard lock(registry().mutex);
  erase_reaped_children();
  registry().children.push_back(std::move(child));
  if (!registry().exit_handler_installed) {
    registry().exit_handler_installed = true;
    std::atexit(join_children_at_exit);
  }
}

/// Signals back to their defaults, so that terminate() ends the child even if the parent's event loop had
/// claimed SIGTERM and SIGINT; no signal blocked.
void reset_signals() {
  for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) ::signal(signal_number, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
}

void flush_stdio() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

void run_in_child(const std::string& name, const std::function<void()>& body) noexcept {
  int code = 0;
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Process %s:\n%s: %s\n", name.c_str(), current_exception_type().c_str(), e.what());
    code = 1;
  } catch (...) {
    std::fprintf(stderr, "Process %s:\n%s\n", name.c_str(), current_exception_type().c_str());
    code = 1;
  }
  join_children_at_exit();  // as Python's child does before it exits: its own children first
  flush_stdio();
  ::_exit(code);
}

}  // namespace detail

const char* to_string(StartMethod method) noexcept {
  switch (method) {
    case StartMethod::fork:
      return "fork";
    case StartMethod::spawn:
      return "spawn";
    case StartMethod::forkserver:
      return "forkserver";
  }
  return "unknown";
}

void set_start_method(StartMethod method) { self().start_method.store(static_cast<int>(method)); }

StartMethod get_start_method() {
  const int chosen = self().start_method.load();
  if (chosen >= 0) return static_cast<StartMethod>(chosen);
  return detail::init_was_called() ? StartMethod::forkserver : StartMethod::fork;
}

Process::Process() : Process(ProcessOptions{}) {}

Process::Process(ProcessOptions options) : options_(std::move(options)) {
  identity_ = self().identity;
  identity_.push_back(self().started.fetch_add(1) + 1);
  if (options_.name.empty()) options_.name = default_name(identity_);
  if (!options_.start_method) options_.start_method = get_start_method();
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
  check_not_uninitialized_worker();
  // A subclass's state is the object itself: only fork can carry it.
  if (!target_ || *options_.start_method == StartMethod::fork)
    start_forked();
  else
    start_from_program(*options_.start_method);
  // The child has its own copies now; as Python's start() does, the parent lets go of the target and its
  // arguments. A Connection or Queue moved into the Process is so closed here, and this end of a Pipe
  // sees the end of the stream once the child's copy is gone.
  target_.reset();
}

namespace detail {
int watch_fd(Process& process) {
  if (!process.child_) throw ProcessError("watch_fd: the process was never started");
  return process.child_->watch_fd();
}
}  // namespace detail

void Process::start_forked() {
  detail::flush_stdio();
  const int parent_pid = ::getpid();
  const int pid = ::fork();
  if (pid < 0) throw ProcessError(fmt::format("Process.start: fork failed: {}", std::strerror(errno)));
  if (pid == 0) {
    detail::become_child(options_.name, options_.daemon, identity_, ProcessInfo{self().name, parent_pid, self().daemon});
    if (options_.daemon) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent_pid) ::kill(::getpid(), SIGKILL);  // the parent died before prctl took effect
    }
    detail::set_process_name_after_fork(options_.name);
    detail::reset_signals();
    detail::run_in_child(options_.name, [this] { run(); });
  }

  detail::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw ProcessError(fmt::format("Process.start: pidfd_open failed: {}", std::strerror(error)));
  }
  child_ = std::make_shared<detail::ChildProcess>(pid, std::move(pidfd), detail::UniqueFd(),
                                                  ProcessInfo{options_.name, pid, options_.daemon});
  detail::register_child(child_);
}

void Process::start_from_program(StartMethod method) {
  if (!detail::init_was_called())
    throw ProcessError(fmt::format(
        "Process.start: the {} start method needs cohort::init(argc, argv) as the first statement of main()",
        to_string(method)));
  detail::ChildSpec spec;
  spec.name = options_.name;
  spec.daemon = options_.daemon;
  spec.identity = identity_;
  spec.parent_name = self().name;
  spec.parent_pid = ::getpid();
  spec.parent_daemon = self().daemon;
  spec.start_method = static_cast<int>(get_start_method());
  spec.log_level = detail::log_level_number();
  std::vector<detail::UniqueFd> fds;
  {
    // The arguments are written now, as Python pickles them at start(); descriptors they hold go along.
    detail::FdTransferScope transfer(fds);
    spec.call = target_->call_frame();
  }
  child_ = detail::launch(method, spec, fds);
  detail::register_child(child_);
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

namespace detail {

std::string describe_exit(int exitcode) {
  if (exitcode < 0) {
    const char* abbreviation = ::sigabbrev_np(-exitcode);
    return fmt::format("was killed by signal {} (SIG{})", -exitcode, abbreviation ? abbreviation : "?");
  }
  return fmt::format("exited with code {}", exitcode);
}

}  // namespace detail

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
