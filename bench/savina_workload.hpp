// The Savina actor benchmarks (Imam and Sarkar, "Savina - An Actor Benchmark Suite", AGERE 2014) as run by
// savina_bench.cpp (cohort) and caf_savina_bench.cpp (CAF 0.17), with their default sizes, plus a count of
// idle actors; the constants live here so that both sides run exactly the same work.
//   savina_ping_pong:   two actors pass a count back and forth, ping_pongs round trips; messages/s
//   savina_thread_ring: ring_actors actors in a ring pass a token ring_hops times; hops/s
//   savina_counting:    a producer actor tells a counter counting_messages increments, then asks for
//                       the total; messages/s
//   idle_actors_spawn / idle_actors_bytes: idle_actors actors spawned and held; microseconds per spawn
//                       and resident bytes per actor (one process per run, so the memory is theirs)
#pragma once

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "anchor_driver.hpp"

namespace cohort_bench {

inline constexpr long ping_pongs = 40'000;
inline constexpr long ring_actors = 100;
inline constexpr long ring_hops = 100'000;
inline constexpr long counting_messages = 1'000'000;
inline constexpr long idle_actors = 1'000'000;

/// This process's resident memory in bytes (Linux: /proc/self/statm).
inline double resident_bytes() {
  long pages_total = 0, pages_resident = 0;
  std::ifstream("/proc/self/statm") >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace cohort_bench
