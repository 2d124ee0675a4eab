// Bounded busy-waiting before a thread goes to sleep. Waking a sleeping thread costs a system call on
// each side and, on virtual machines, tens of microseconds; a thread that expects its next piece of work
// within microseconds (a pool worker between tiny tasks, an event loop awaiting a pool's result) polls
// for a short while first and sleeps only when nothing came.
#pragma once

#include <sched.h>

#include <chrono>

namespace cohort::detail {

/// How long a pool worker or a loop thread polls for new work before it sleeps.
inline constexpr std::chrono::microseconds spin_before_sleep{50};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Polls `ready()` until it returns true (then true) or `limit` has passed (then false).
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::steady_clock::duration limit = spin_before_sleep) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    // The clock is read once per 64 polls: cheap as it is, it costs more than the poll itself.
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

/// spin_until, giving the CPU to any other runnable thread between short runs of polls. For a thread
/// whose answer must come from another process that may be waiting for a CPU while this one polls:
/// with more busy processes than cores (a client, a manager's server and a worker on two), a plain
/// spin holds up the very process it waits for. Where nothing else is runnable, sched_yield returns at
/// once and the poll goes on.
template <class Ready>
bool spin_until_yielding(Ready&& ready, std::chrono::steady_clock::duration limit = spin_before_sleep) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    ::sched_yield();
    if (std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

}  // namespace cohort::detail
