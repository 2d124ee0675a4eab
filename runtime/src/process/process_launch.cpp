// The spawn and forkserver start methods, and the worker side of both.
//
// Either way the child receives a ChildSpec (its name, its parent, the call to run) and the descriptors
// its arguments hold over a "boot" socket, answers with one byte once it has them, and only then does
// start() return: a child that dies first (a program whose main() lacks cohort::init) is reported by
// start() with its exit code, never waited on forever.
//
// spawn: fork + exec of /proc/self/exe with the recorded command line and COHORT_WORKER=process:<fd>.
// forkserver: init() forks a server while the program is single-threaded. A request is one SOCK_SEQPACKET
// record carrying two descriptors, the child's boot socket and a status socket; records are atomic, so
// every process that inherited the control socket (children started with fork) may use it. The server
// forks, answers on the status socket with the child's pid and a pidfd (for signals), and when it reaps
// the child writes its wait status there.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "cohort/detail/fd_passing.hpp"
#include "cohort/detail/fd_transfer.hpp"
#include "cohort/error.hpp"
#include "cohort/init.hpp"
#include "cohort/log.hpp"
#include "process/process_internal.hpp"

extern char** environ;

namespace cohort::detail {
namespace {

/// How long start() waits for a child to take its spec: only a child that is stuck before init() (or
/// runs main() without it) takes this long.
constexpr std::chrono::seconds start_timeout{30};

std::pair<UniqueFd, UniqueFd> socket_pair(int type, const char* what) {
  int ends[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, ends) != 0)
    throw ProcessError(fmt::format("{}: socketpair failed: {}", what, std::strerror(errno)));
  return {UniqueFd(ends[0]), UniqueFd(ends[1])};
}

UniqueFd open_pidfd(int pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

/// Waits for the child's one-byte acknowledgement; false if it closed the socket (ended) first or the
/// deadline passed.
bool await_ack(int socket, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd watch{.fd = socket, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&watch, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    char ack = 0;
    ssize_t n = 0;
    do {
      n = ::recv(socket, &ack, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n == 1;
  }
}

/// Sends the spec to a just-started child and waits until it has taken it. If it ends first (or never
/// answers, then it is killed), the child is reaped and start() fails with what happened.
void deliver(ChildProcess& child, UniqueFd socket, const ChildSpec& spec, const std::vector<UniqueFd>& fds) {
  const auto deadline = Clock::now() + start_timeout;
  // A child that never reads must not block start() forever on a spec larger than the socket buffer.
  const timeval send_timeout{.tv_sec = start_timeout.count(), .tv_usec = 0};
  ::setsockopt(socket.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  bool delivered = false;
  try {
    send_with_fds(socket.get(), dumps(spec), fds);
    delivered = await_ack(socket.get(), deadline);
  } catch (const Error&) {
  }
  if (delivered) return;
  const bool ended = child.wait_until(Clock::now() + std::chrono::seconds(5));
  if (!ended) {
    child.signal(SIGKILL);
    child.wait_until(Clock::time_point::max());
    throw ProcessError(fmt::format("Process.start: {} (pid {}) did not take its target within {} s and was killed", spec.name,
                                   child.pid(), start_timeout.count()));
  }
  throw ProcessError(fmt::format(
      "Process.start: {} (pid {}) ended with exit code {} before it started its target; does main() call "
      "cohort::init(argc, argv) as its first statement?",
      spec.name, child.pid(), *child.poll()));
}

/// The child's command line and environment, built before fork: after it only async-signal-safe calls
/// may run, since other threads of the parent may hold the allocator's locks.
struct ExecImage {
  std::vector<std::string> strings;
  std::vector<char*> argv;
  std::vector<char*> envp;

  ExecImage(std::string worker_setting) {
    const auto& arguments = program_arguments();
    strings.assign(arguments.begin(), arguments.end());
    if (strings.empty()) strings.emplace_back("cohort-worker");
    const std::size_t argc = strings.size();
    const std::string_view prefix = worker_variable;
    for (char** entry = environ; entry && *entry; ++entry) {
      const std::string_view setting(*entry);
      if (!(setting.starts_with(prefix) && setting.size() > prefix.size() && setting[prefix.size()] == '='))
        strings.emplace_back(setting);
    }
    strings.push_back(std::move(worker_setting));
    for (std::size_t i = 0; i < strings.size(); ++i) (i < argc ? argv : envp).push_back(strings[i].data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
  }
};

/// Forks and re-executes this program with COHORT_WORKER=<role>:<fd of child_end>. `daemon`: the child
/// dies with this thread's process (PR_SET_PDEATHSIG survives exec).
int fork_exec(const std::string& role, UniqueFd& child_end, bool daemon) {
  ExecImage image(fmt::format("{}={}:{}", worker_variable, role, child_end.get()));
  flush_stdio();
  const int parent_pid = ::getpid();
  const int pid = ::fork();
  if (pid < 0) throw ProcessError(fmt::format("Process.start: fork failed: {}", std::strerror(errno)));
  if (pid == 0) {
    if (daemon) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent_pid) ::_exit(1);
    }
    ::fcntl(child_end.get(), F_SETFD, 0);  // the one descriptor the new program inherits
    ::execve("/proc/self/exe", image.argv.data(), image.envp.data());
    ::_exit(127);
  }
  child_end.reset();
  return pid;
}

std::shared_ptr<ChildProcess> launch_spawned(ChildSpec spec, const std::vector<UniqueFd>& fds) {
  auto [boot, child_end] = socket_pair(SOCK_STREAM, "Process.start");
  spec.forker_pid = ::getpid();
  const int pid = fork_exec("process", child_end, spec.daemon);
  UniqueFd pidfd = open_pidfd(pid);
  if (!pidfd) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw ProcessError(fmt::format("Process.start: pidfd_open failed: {}", std::strerror(error)));
  }
  auto child = std::make_shared<ChildProcess>(pid, std::move(pidfd), UniqueFd(), ProcessInfo{spec.name, pid, spec.daemon});
  deliver(*child, std::move(boot), spec, fds);
  return child;
}

// ---- the fork server, client side

struct ForkServerClient {
  std::mutex mutex;  // guards starting the server
  int pid = 0;
  UniqueFd control;
};

ForkServerClient& fork_server() {
  static auto* instance = new ForkServerClient;  // never destroyed: children are joined during exit
  return *instance;
}

[[noreturn]] void serve(UniqueFd control);

bool single_threaded() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("Threads:")) return std::stoi(line.substr(8)) == 1;
  return false;
}

/// With the client's mutex held.
void start_fork_server_locked(bool by_fork) {
  auto& client = fork_server();
  auto [control, server_end] = socket_pair(SOCK_SEQPACKET, "starting the fork server");
  if (by_fork) {
    const int parent_pid = ::getpid();
    flush_stdio();
    const int pid = ::fork();
    if (pid < 0) throw ProcessError(fmt::format("cannot start the fork server: fork failed: {}", std::strerror(errno)));
    if (pid == 0) {
      control.reset();
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent_pid) ::_exit(0);
      serve(std::move(server_end));
    }
    client.pid = pid;
  } else {
    client.pid = fork_exec("forkserver", server_end, true);
  }
  client.control = std::move(control);
}

std::shared_ptr<ChildProcess> launch_from_server(ChildSpec spec, const std::vector<UniqueFd>& fds) {
  auto& client = fork_server();
  int control = -1;
  {
    std::lock_guard lock(client.mutex);
    if (!client.control) start_fork_server_locked(false);
    control = client.control.get();
    spec.forker_pid = client.pid;
  }
  auto [boot, boot_child] = socket_pair(SOCK_STREAM, "Process.start");
  auto [status, status_server] = socket_pair(SOCK_STREAM, "Process.start");
  {
    std::vector<UniqueFd> request;
    request.push_back(std::move(boot_child));
    request.push_back(std::move(status_server));
    // The child writes where this process's stdio points now, not where it pointed when the server was
    // forked (a test capturing stderr, a program that redirected its output).
    for (int standard = 0; standard < 3; ++standard) {
      UniqueFd copy(::fcntl(standard, F_DUPFD_CLOEXEC, 0));
      if (copy) request.push_back(std::move(copy));
    }
    if (request.size() != 5) request.resize(2);
    try {
      send_with_fds(control, {}, request);
    } catch (const EOFError&) {
      throw ProcessError("Process.start: the fork server has ended");
    }
  }
  std::vector<UniqueFd> reply_fds;
  int pid = 0;
  try {
    pid = loads<int>(recv_with_fds(status.get(), reply_fds));
  } catch (const EOFError&) {
    throw ProcessError("Process.start: the fork server ended before it started the child");
  }
  if (pid <= 0 || reply_fds.size() != 1)
    throw ProcessError(fmt::format("Process.start: the fork server could not fork: {}", std::strerror(-pid)));
  auto child = std::make_shared<ChildProcess>(pid, std::move(reply_fds[0]), std::move(status),
                                              ProcessInfo{spec.name, pid, spec.daemon});
  deliver(*child, std::move(boot), spec, fds);
  return child;
}

// ---- the fork server, server side

[[noreturn]] void run_child_from(UniqueFd boot);

/// Reaps every ended child and reports its wait status to whoever started it.
void reap_children(std::map<int, UniqueFd>& status_of) {
  for (;;) {
    int status = 0;
    const int pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    if (auto found = status_of.find(pid); found != status_of.end()) {
      ::send(found->second.get(), &status, sizeof status, MSG_NOSIGNAL | MSG_DONTWAIT);
      status_of.erase(found);
    }
  }
}

void serve(UniqueFd control) {
  set_process_name_after_fork("ForkServer");
  // This process and its children are not clients of the server that started them: a child that needs
  // one starts its own. (Forked by init() while it held the client's mutex: a fresh one.)
  auto& client = fork_server();
  new (&client.mutex) std::mutex;
  client.control.reset();
  client.pid = 0;
  // Ctrl-C goes to the whole process group: the server outlives it so that the program can still clean
  // up, as Python's does. It ends when every process holding the control socket has closed it.
  ::signal(SIGINT, SIG_IGN);
  sigset_t child_signal;
  sigemptyset(&child_signal);
  sigaddset(&child_signal, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &child_signal, nullptr);
  UniqueFd signals(::signalfd(-1, &child_signal, SFD_CLOEXEC | SFD_NONBLOCK));
  std::map<int, UniqueFd> status_of;
  for (;;) {
    pollfd watch[2] = {{.fd = control.get(), .events = POLLIN, .revents = 0},
                       {.fd = signals.get(), .events = POLLIN, .revents = 0}};
    if (::poll(watch, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (watch[1].revents) {
      signalfd_siginfo info;
      while (::read(signals.get(), &info, sizeof info) == sizeof info) {
      }
      reap_children(status_of);
    }
    if (!watch[0].revents) continue;
    std::vector<UniqueFd> request;
    try {
      recv_with_fds(control.get(), request);
    } catch (const EOFError&) {
      break;
    } catch (const std::exception& e) {
      log_error(fmt::format("fork server: bad request: {}", e.what()));
      continue;
    }
    if (request.size() != 2 && request.size() != 5) continue;
    const int pid = ::fork();
    if (pid == 0) {
      control.reset();
      signals.reset();
      request[1].reset();
      for (auto& [_, socket] : status_of) socket.reset();
      for (int standard = 0; standard < 3 && request.size() == 5; ++standard) {
        ::dup2(request[2 + standard].get(), standard);
        request[2 + standard].reset();
      }
      run_child_from(std::move(request[0]));
    }
    std::vector<UniqueFd> pidfd;
    if (pid > 0) pidfd.push_back(open_pidfd(pid));
    try {
      send_with_fds(request[1].get(), dumps(pid > 0 ? pid : -errno), pidfd);
    } catch (const std::exception&) {
      // The client is gone; the child will find its boot socket closed and end.
    }
    if (pid > 0) status_of.emplace(pid, std::move(request[1]));
  }
  ::_exit(0);
}

// ---- the child's side

void run_child_from(UniqueFd boot) {
  std::vector<UniqueFd> fds;
  ChildSpec spec;
  try {
    spec = loads<ChildSpec>(recv_with_fds(boot.get(), fds));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cohort worker %d: cannot read what to run: %s\n", ::getpid(), e.what());
    ::_exit(1);
  }
  if (spec.daemon) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != spec.forker_pid) ::kill(::getpid(), SIGKILL);  // the forker died before prctl took effect
  }
  become_child(spec.name, spec.daemon, spec.identity, ProcessInfo{spec.parent_name, spec.parent_pid, spec.parent_daemon});
  set_process_name_after_fork(spec.name);
  set_log_level_number(spec.log_level);
  set_start_method(static_cast<StartMethod>(spec.start_method));
  reset_signals();
  const char ack = 1;
  ::send(boot.get(), &ack, 1, MSG_NOSIGNAL);
  boot.reset();
  run_in_child(spec.name, [&] {
    FdTransferScope transfer(fds);
    invoke(spec.call, nullptr);
  });
}

int parse_fd(std::string_view text) {
  int fd = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), fd);
  if (error != std::errc() || end != text.data() + text.size() || fd < 0) return -1;
  return fd;
}

}  // namespace

void reset_fork_server_lock_after_fork() { new (&fork_server().mutex) std::mutex; }

void start_fork_server() {
  auto& client = fork_server();
  std::lock_guard lock(client.mutex);
  // Forking is only safe while no other thread exists; otherwise the server is started by re-executing
  // the program when it is first needed.
  if (!client.control && single_threaded()) start_fork_server_locked(true);
}

void run_worker(std::string_view role) {
  const auto colon = role.find(':');
  const int fd = colon == std::string_view::npos ? -1 : parse_fd(role.substr(colon + 1));
  const auto kind = role.substr(0, colon);
  if (fd < 0 || (kind != "process" && kind != "forkserver")) {
    std::fprintf(stderr, "cohort: %s=%.*s is not a worker role this program knows\n", worker_variable,
                 static_cast<int>(role.size()), role.data());
    ::_exit(1);
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (kind == "forkserver") serve(UniqueFd(fd));
  run_child_from(UniqueFd(fd));
}

std::shared_ptr<ChildProcess> launch(StartMethod method, const ChildSpec& spec, const std::vector<UniqueFd>& fds) {
  return method == StartMethod::spawn ? launch_spawned(spec, fds) : launch_from_server(spec, fds);
}

}  // namespace cohort::detail
