// The Lockable and TimedLockable members the standard library's lock holders use (std::lock_guard,
// std::unique_lock, std::scoped_lock), over the Python-style acquire(block[, timeout]) / release() that
// every process-shared lock of cohort has.
#pragma once

#include <chrono>

namespace cohort::detail {

template <class Derived>
class StdLockable {
 public:
  void lock() { self().acquire(); }
  void unlock() { self().release(); }
  bool try_lock() { return self().acquire(false); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return self().acquire(true, timeout);
  }
  template <class C, class Duration>
  bool try_lock_until(std::chrono::time_point<C, Duration> deadline) {
    return self().acquire(true, deadline - C::now());
  }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

}  // namespace cohort::detail
