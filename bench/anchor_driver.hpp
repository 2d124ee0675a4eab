// Drivers that measure a workload as its Python anchor does (anchors/*.py) and print the same JSON line,
// so compare.py can put them side by side. A cohort repetition often lasts a millisecond or two where
// Python's lasts a hundred, so one scheduler hiccup or one cold page-faulting repetition on this shared
// machine moved the median of five by a factor of several. The drivers therefore warm up until the
// repetitions are warm (at least three, and at least 200 ms), time at least eleven repetitions and at
// least 300 ms of them, and report the median together with its spread: the interquartile range as a
// percentage of the median, which one outlier does not move.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace cohort_bench {

inline constexpr int min_warmup_reps = 3;
inline constexpr std::chrono::milliseconds min_warmup_time{200};
inline constexpr int min_timed_reps = 11;
inline constexpr std::chrono::milliseconds min_timed_time{300};
inline constexpr int max_timed_reps = 1001;

/// Runs `once` (which returns the repetition's value) through the warm-up, then as often as the timed
/// minimums ask; returns the timed values.
template <class Once>
std::vector<double> measure_like_anchor(Once&& once) {
  using Clock = std::chrono::steady_clock;
  const auto run_for = [&](int min_reps, Clock::duration min_time, std::vector<double>* values) {
    const auto start = Clock::now();
    for (int rep = 0; rep < max_timed_reps && (rep < min_reps || Clock::now() - start < min_time); ++rep) {
      const double value = once();
      if (values) values->push_back(value);
    }
  };
  run_for(min_warmup_reps, min_warmup_time, nullptr);
  std::vector<double> values;
  run_for(min_timed_reps, min_timed_time, &values);
  return values;
}

/// The q-quantile of sorted `values`, interpolated as Python's statistics.quantiles(method='inclusive').
inline double quantile(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(at);
  const auto above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (at - static_cast<double>(below));
}

inline void emit_like_anchor(const std::string& name, std::vector<double> values, const std::string& unit) {
  std::sort(values.begin(), values.end());
  const double median = quantile(values, 0.5);
  const double spread = median == 0 ? 0 : 100 * (quantile(values, 0.75) - quantile(values, 0.25)) / median;
  std::printf("{\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", \"params\": {\"reps\": %zu, \"min\": %.6g, "
              "\"max\": %.6g, \"spread_pct\": %.3g}}\n",
              name.c_str(), median, unit.c_str(), values.size(), values.front(), values.back(), spread);
  std::fflush(stdout);
}

/// Whether the command line asks for workload `name`: every workload when it names none.
inline bool workload_wanted(int argc, char** argv, std::string_view name) {
  if (argc < 2) return true;
  for (int i = 1; i < argc; ++i)
    if (name == argv[i]) return true;
  return false;
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace cohort_bench
