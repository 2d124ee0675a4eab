// Drivers that measure a workload the way its Python anchor does (anchors/*.py): one warm-up
// repetition, then the median of five, printed as the same JSON line, so compare.py can put them side
// by side.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace cohort_bench {

inline constexpr int anchor_reps = 5;
inline constexpr int anchor_warmup = 1;

/// Runs `once` (which returns the repetition's value) warm-up + reps times; returns the timed values.
template <class Once>
std::vector<double> measure_like_anchor(Once&& once) {
  for (int i = 0; i < anchor_warmup; ++i) once();
  std::vector<double> values;
  for (int i = 0; i < anchor_reps; ++i) values.push_back(once());
  return values;
}

inline void emit_like_anchor(const std::string& name, std::vector<double> values, const std::string& unit) {
  std::sort(values.begin(), values.end());
  const double median = values[values.size() / 2];
  std::string samples;
  for (double v : values) samples += (samples.empty() ? "" : ", ") + std::to_string(v);
  std::printf("{\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", \"params\": {\"min\": %.6g, \"max\": %.6g, "
              "\"samples\": [%s]}}\n",
              name.c_str(), median, unit.c_str(), values.front(), values.back(), samples.c_str());
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
