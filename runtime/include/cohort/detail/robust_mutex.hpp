// A mutex that lives in shared memory and survives the death of its holder: a process-shared, robust
// pthread mutex. When a process dies holding it, the kernel marks it and the next locker gets it with
// `Locked::recovered`, so it can repair (or discard) what the dead holder was changing, instead of
// waiting forever as Python's multiprocessing locks do.
#pragma once

#include <pthread.h>

#include <optional>

#include "cohort/detail/clock.hpp"

namespace cohort::detail {

class RobustMutex {
 public:
  enum class Locked {
    no,         // the deadline passed
    yes,        // acquired
    recovered,  // acquired from a holder that died: what it protected may be half-changed
  };

  /// Initializes the mutex in place, in zero-filled shared memory, before any other process maps it.
  RobustMutex();
  ~RobustMutex() = default;  // never destroyed explicitly: it lives as long as its shared memory
  RobustMutex(const RobustMutex&) = delete;
  RobustMutex& operator=(const RobustMutex&) = delete;

  /// Spins briefly (a holder of a short critical section is usually done within microseconds), then
  /// sleeps until the mutex is free or `deadline` (nullopt: forever) passes.
  Locked lock_until(std::optional<Clock::time_point> deadline = std::nullopt);
  Locked try_lock();
  void unlock() noexcept;

 private:
  Locked finish(int result, const char* what);

  pthread_mutex_t mutex_;
};

}  // namespace cohort::detail
