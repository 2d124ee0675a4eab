// Shared by the benchmarks: the anchors' work function and latency statistics.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace cohort_bench {

// The anchors' `square(x)`: as small as work gets, so that only the machinery around it is measured.
inline long square(long x) { return x * x; }

// sum(i * i for i in range(n)), checked after every batch so no result can be skipped or reordered away.
inline long expected_sum_of_squares(long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += i * i;
  return sum;
}

using Clock = std::chrono::steady_clock;

inline double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// Median and tail of per-round-trip samples, as counters: a mean hides both the typical round trip
// and the scheduler hiccups a shared 2-core machine produces.
inline void report_latency(benchmark::State& state, std::vector<double>& samples_us) {
  if (samples_us.empty()) return;
  auto at = [&](double q) {
    const auto k = static_cast<std::size_t>(q * static_cast<double>(samples_us.size() - 1));
    std::nth_element(samples_us.begin(), samples_us.begin() + static_cast<std::ptrdiff_t>(k), samples_us.end());
    return samples_us[k];
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p90_us"] = at(0.90);
  state.counters["p99_us"] = at(0.99);
}

}  // namespace cohort_bench
