// RobustMutex over pthread's robust, process-shared mutexes.
#include "cohort/detail/robust_mutex.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {
namespace {

/// How long a locker polls a held mutex before it sleeps in the kernel. Short: critical sections in
/// shared memory are a few stores long, and a holder that was preempted will not be back for a while.
constexpr std::chrono::microseconds spin_on_held_mutex{4};

}  // namespace

RobustMutex::RobustMutex() {
  pthread_mutexattr_t attributes;
  pthread_mutexattr_init(&attributes);
  pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
  const int result = pthread_mutex_init(&mutex_, &attributes);
  pthread_mutexattr_destroy(&attributes);
  if (result != 0) throw Error(fmt::format("cannot create a process-shared mutex: {}", std::strerror(result)));
}

RobustMutex::Locked RobustMutex::finish(int result, const char* what) {
  switch (result) {
    case 0:
      return Locked::yes;
    case EOWNERDEAD:
      // The holder died. Marking the mutex consistent keeps it usable; the caller repairs the data.
      pthread_mutex_consistent(&mutex_);
      return Locked::recovered;
    case EBUSY:
    case ETIMEDOUT:
      return Locked::no;
    default:
      throw Error(fmt::format("{} failed: {}", what, std::strerror(result)));
  }
}

RobustMutex::Locked RobustMutex::try_lock() { return finish(pthread_mutex_trylock(&mutex_), "mutex try_lock"); }

RobustMutex::Locked RobustMutex::lock_until(std::optional<Clock::time_point> deadline) {
  Locked locked = Locked::no;
  if (spin_until([&] { return (locked = try_lock()) != Locked::no; }, spin_on_held_mutex)) return locked;
  if (!deadline) return finish(pthread_mutex_lock(&mutex_), "mutex lock");
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer (GCC 12) does not intercept pthread_mutex_clocklock and would then report every
  // unlock after a timed lock; under it the deadline is moved to the realtime clock, which it knows.
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch() + (*deadline - Clock::now());
  constexpr clockid_t clock = CLOCK_REALTIME;
#else
  const auto since_epoch = deadline->time_since_epoch();
  constexpr clockid_t clock = CLOCK_MONOTONIC;
#endif
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  timespec at{};
  at.tv_sec = static_cast<time_t>(seconds.count());
  at.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
#if defined(__SANITIZE_THREAD__)
  static_cast<void>(clock);
  return finish(pthread_mutex_timedlock(&mutex_, &at), "mutex lock");
#else
  return finish(pthread_mutex_clocklock(&mutex_, clock, &at), "mutex lock");
#endif
}

void RobustMutex::unlock() noexcept { pthread_mutex_unlock(&mutex_); }

}  // namespace cohort::detail
