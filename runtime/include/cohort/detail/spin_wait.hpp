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

/// What a polling thread does between short runs of polls.
enum class BetweenPolls {
  keep_cpu,   // nothing: the answer comes from a thread that has a CPU of its own
  yield_cpu,  // sched_yield: the answer may have to come from a process waiting for this CPU (more busy
              // processes than cores, as a manager's client, server and worker on two), which a plain
              // spin would hold up; where nothing else is runnable, the yield returns at once
};

/// Polls `ready()` until it returns true (then true) or `limit` has passed (then false).
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::steady_clock::duration limit = spin_before_sleep,
                BetweenPolls between = BetweenPolls::keep_cpu) {
  const bool yielding = between == BetweenPolls::yield_cpu;
  // The clock is read once per run of polls: cheap as it is, it costs more than the poll itself. A
  // yielding run is shorter, so that a thread waiting for this CPU gets it soon.
  const int run = yielding ? 16 : 64;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    for (int i = 0; i < run; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (yielding) ::sched_yield();
    if (std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

}  // namespace cohort::detail
