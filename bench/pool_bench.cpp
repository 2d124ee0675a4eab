// Process pools measured as anchors/pool_map_tiny.py, pool_map_chunk1.py, ppe_submit.py, ppe_map.py and
// apply_latency.py measure Python's (2 workers, or 1 for apply, fork start method, the pool started and
// warmed up outside the timed region): prints one JSON line per workload ("cohort_" + the anchor's name).
// million_futures submits 1,000,000 tiny tasks to a ProcessPoolExecutor(2) at once and reports the
// process's peak resident memory; run it alone, so that nothing else counts in that peak.
// Usage: cohort_pool_bench [pool_map_tiny] [pool_map_chunk1] [ppe_submit] [ppe_map] [apply_latency]
//                          [million_futures]
#include <sys/resource.h>

#include <cohort/cohort.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string_view>
#include <tuple>
#include <vector>

#include "anchor_driver.hpp"

namespace {

using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using cohort_bench::seconds_since;
using Clock = std::chrono::steady_clock;

constexpr auto method = cohort::StartMethod::fork;

long square(long x) { return x * x; }

std::vector<long> range(long n) {
  std::vector<long> values(static_cast<std::size_t>(n));
  std::iota(values.begin(), values.end(), 0L);
  return values;
}

long sum_of_squares(long n) { return (n - 1) * n * (2 * n - 1) / 6; }

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "cohort_pool_bench: wrong result in %s\n", what);
    std::exit(1);
  }
}

/// Pool(2).map(square, range(n), chunksize): tasks/s.
void pool_map(const char* name, long n, std::size_t chunksize) {
  cohort::Pool pool({.processes = 2, .start_method = method});
  const auto inputs = range(n);
  const auto values = measure_like_anchor([&] {
    const auto start = Clock::now();
    const auto out = pool.map(square, inputs, chunksize);
    const double elapsed = seconds_since(start);
    check(static_cast<long>(out.size()) == n && std::accumulate(out.begin(), out.end(), 0L) == sum_of_squares(n), name);
    return static_cast<double>(n) / elapsed;
  });
  emit_like_anchor(std::string("cohort_") + name, values, "tasks/s");
}

void ppe_submit() {
  constexpr long n = 20'000;
  cohort::ProcessPoolExecutor pool({.max_workers = 2, .start_method = method});
  const auto values = measure_like_anchor([&] {
    const auto start = Clock::now();
    std::vector<cohort::Future<long>> futures;
    futures.reserve(n);
    for (long i = 0; i < n; ++i) futures.push_back(pool.submit(square, i));
    long total = 0;
    for (auto& f : cohort::as_completed(futures)) total += f.get();
    const double elapsed = seconds_since(start);
    check(total == sum_of_squares(n), "ppe_submit");
    return static_cast<double>(n) / elapsed;
  });
  emit_like_anchor("cohort_ppe_submit", values, "tasks/s");
}

void ppe_map() {
  constexpr long n = 200'000;
  cohort::ProcessPoolExecutor pool({.max_workers = 2, .start_method = method});
  const auto inputs = range(n);
  const auto values = measure_like_anchor([&] {
    const auto start = Clock::now();
    const auto out = pool.map(square, inputs, {.chunksize = 1000}).collect();
    const double elapsed = seconds_since(start);
    check(static_cast<long>(out.size()) == n && std::accumulate(out.begin(), out.end(), 0L) == sum_of_squares(n),
          "ppe_map");
    return static_cast<double>(n) / elapsed;
  });
  emit_like_anchor("cohort_ppe_map", values, "tasks/s");
}

/// Pool(1).apply(square, (3,)): the median latency of 2,000 calls, each timed alone.
void apply_latency() {
  constexpr int calls = 2'000;
  cohort::Pool pool({.processes = 1, .start_method = method});
  const auto values = measure_like_anchor([&] {
    std::vector<double> latencies(calls);
    for (auto& latency : latencies) {
      const auto start = Clock::now();
      const long r = pool.apply(square, std::tuple{3L});
      latency = seconds_since(start) * 1e6;
      check(r == 9, "apply_latency");
    }
    std::nth_element(latencies.begin(), latencies.begin() + calls / 2, latencies.end());
    return latencies[calls / 2];
  });
  emit_like_anchor("cohort_apply_latency", values, "us/call");
}

void million_futures() {
  constexpr long n = 1'000'000;
  cohort::ProcessPoolExecutor pool({.max_workers = 2, .start_method = method});
  const auto start = Clock::now();
  std::vector<cohort::Future<long>> futures;
  futures.reserve(n);
  for (long i = 0; i < n; ++i) futures.push_back(pool.submit(square, i));
  const double submitted = seconds_since(start);
  long total = 0;
  for (auto& f : futures) total += f.get() % 1000;
  const double elapsed = seconds_since(start);
  check(total > 0, "million_futures");
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  std::printf("{\"name\": \"cohort_million_futures\", \"value\": %.6g, \"unit\": \"MB peak RSS\", \"params\": "
              "{\"n\": %ld, \"submit_s\": %.3f, \"total_s\": %.3f, \"tasks_per_s\": %.0f}}\n",
              static_cast<double>(usage.ru_maxrss) / 1024.0, n, submitted, elapsed, n / elapsed);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  auto wanted = [&](std::string_view name) { return cohort_bench::workload_wanted(argc, argv, name); };
  if (wanted("pool_map_tiny")) pool_map("pool_map_tiny", 200'000, 0);
  if (wanted("pool_map_chunk1")) pool_map("pool_map_chunk1", 20'000, 1);
  if (wanted("ppe_submit")) ppe_submit();
  if (wanted("ppe_map")) ppe_map();
  if (wanted("apply_latency")) apply_latency();
  if (argc > 1 && wanted("million_futures")) million_futures();
}
