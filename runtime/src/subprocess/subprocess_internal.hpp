// What subprocess.cpp and subprocess_launch.cpp share: a started child as its Popen sees it, and the
// signal mask both the start of a child and the start of the reaper thread need.
#pragma once

#include <pthread.h>

#include <csignal>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/unique_fd.hpp"

namespace cohort::detail {

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

/// A started child: reaped exactly once, under the mutex; its pidfd stays open until the Popen goes, so
/// a waiter polling it never sees a reused descriptor number.
class PopenState {
 public:
  PopenState(std::vector<std::string> args, int pid, UniqueFd pidfd)
      : args_(std::move(args)), pid_(pid), pidfd_(std::move(pidfd)) {}
  PopenState(const PopenState&) = delete;
  PopenState& operator=(const PopenState&) = delete;

  ~PopenState();

  const std::vector<std::string>& args() const noexcept { return args_; }
  int pid() const noexcept { return pid_; }
  int pidfd() const noexcept { return pidfd_.get(); }

  std::optional<int> returncode() const {
    std::lock_guard lock(mutex_);
    return returncode_;
  }

  std::optional<int> poll();

  /// True once the child has ended and been reaped.
  bool wait_until(Clock::time_point deadline, const char* what);

  void send_signal(int signal_number);

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

}  // namespace cohort::detail
