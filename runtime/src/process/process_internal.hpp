// What process.cpp and process_launch.cpp share: a started child as the parent sees it, the description a
// spawned or forkserver child receives, and the steps every child takes.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/detail/unique_fd.hpp"
#include "cohort/process.hpp"

namespace cohort::detail {

/// A started child: its pid, the pidfd that signals it, and its exit code once it ended. A direct child
/// (fork, spawn) is waited for through its pidfd and reaped with waitpid; a child of the fork server is
/// reaped by the server, which reports its wait status on `status`.
class ChildProcess {
 public:
  ChildProcess(int pid, UniqueFd pidfd, UniqueFd status, ProcessInfo info)
      : pid_(pid), server_child_(static_cast<bool>(status)), pidfd_(std::move(pidfd)), status_(std::move(status)),
        info_(std::move(info)) {}

  int pid() const noexcept { return pid_; }
  const ProcessInfo& info() const noexcept { return info_; }

  /// Readable once the child has ended (or, for a forkserver child, once the server reported).
  int watch_fd();

  /// The exit code if the child has ended (reaping it), nullopt while it runs.
  std::optional<int> poll();
  /// Waits until the child ends or the deadline passes; true if it ended.
  bool wait_until(Clock::time_point deadline);
  void signal(int signal_number);

 private:
  std::optional<int> reap_locked();

  const int pid_;
  const bool server_child_;
  std::mutex mutex_;  // guards reaping: a pid is waited for exactly once
  UniqueFd pidfd_;
  UniqueFd status_;
  std::optional<int> exitcode_;
  ProcessInfo info_;
};

/// Everything a spawned or forkserver child needs to become the Process and run its target.
struct ChildSpec {
  std::string name;
  bool daemon = false;
  std::vector<int> identity;
  std::string parent_name;
  int parent_pid = 0;
  bool parent_daemon = false;
  int forker_pid = 0;  // the process that forks the child: the parent, or the fork server
  int start_method = 0;  // a StartMethod
  int log_level = 0;
  CallFrame call;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(name, daemon, identity, parent_name, parent_pid, parent_daemon, forker_pid, start_method, log_level, call);
  }
};

/// The environment variable that makes init() run a worker instead of returning: "process:<fd>" for a
/// spawned Process, "forkserver:<fd>" for a fork server started by re-execution.
inline constexpr const char* worker_variable = "COHORT_WORKER";

bool init_was_called() noexcept;
/// Called by init() in the main program, while it is single-threaded.
void start_fork_server();
/// In a child forked from a process whose other threads may have held the fork server client's mutex.
void reset_fork_server_lock_after_fork();
/// Called by init() when worker_variable is set; never returns.
[[noreturn]] void run_worker(std::string_view role);

/// In a child right after fork (or at the start of a spawned one): this is a new process with no
/// children.
void become_child(const std::string& name, bool daemon, const std::vector<int>& identity, ProcessInfo parent);
void reset_signals();
/// Runs `body` as a child's whole life: its exceptions are printed as Python prints a child's traceback
/// (exit code 1), its own children are joined, stdio is flushed, and the process ends.
[[noreturn]] void run_in_child(const std::string& name, const std::function<void()>& body) noexcept;
void register_child(std::shared_ptr<ChildProcess> child);
/// Flushes stdio before a fork, so that buffered output is not written by both processes.
void flush_stdio();

/// Starts a child with spawn or forkserver and waits until it has received its spec.
std::shared_ptr<ChildProcess> launch(StartMethod method, const ChildSpec& spec, const std::vector<UniqueFd>& fds);

}  // namespace cohort::detail
