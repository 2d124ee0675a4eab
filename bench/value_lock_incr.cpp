// Value<int> incremented under its lock by 2 processes, measured as anchors/value_lock_incr.py measures
// Python's mp.Value: each worker does 100,000 times
//     { std::lock_guard hold(value.get_lock()); value.set(value.get() + 1); }
// Per repetition: a fresh Value and fresh workers (fork, as the anchor), both ready at a Barrier before
// the clock starts; timed from the parent setting the `go` Event until every worker has passed the `done`
// Barrier. The final count is checked. Prints the anchor's JSON line ("cohort_value_lock_incr",
// increments/s, median of 5 after 1 warm-up) and a line for people.
#include <cohort/cohort.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "anchor_driver.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int increments_per_process = 100'000;
constexpr int processes = 2;

void worker(cohort::Value<int> value, int n, cohort::Barrier ready, cohort::Event go, cohort::Barrier done) {
  auto& lock = value.get_lock();
  ready.wait();
  go.wait();
  for (int i = 0; i < n; ++i) {
    std::lock_guard hold(lock);
    value.set(value.get() + 1);
  }
  done.wait();
}

double run_once() {
  cohort::Value<int> value(0);
  cohort::Barrier ready(processes + 1);
  cohort::Barrier done(processes + 1);
  cohort::Event go;
  std::vector<std::unique_ptr<cohort::Process>> workers;
  for (int i = 0; i < processes; ++i) {
    workers.push_back(
        std::make_unique<cohort::Process>(cohort::ProcessOptions{.start_method = cohort::StartMethod::fork}, worker,
                                          value, increments_per_process, ready, go, done));
    workers.back()->start();
  }
  ready.wait();
  const auto start = Clock::now();
  go.set();
  done.wait();
  const double elapsed = cohort_bench::seconds_since(start);
  for (auto& p : workers) {
    p->join();
    if (p->exitcode() != 0) {
      std::fprintf(stderr, "value_lock_incr: a worker ended with %d\n", p->exitcode().value_or(-1));
      std::exit(1);
    }
  }
  if (value.get() != increments_per_process * processes) {
    std::fprintf(stderr, "value_lock_incr: counted %d, expected %d\n", value.get(), increments_per_process * processes);
    std::exit(1);
  }
  return increments_per_process * processes / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  auto values = cohort_bench::measure_like_anchor(run_once);
  cohort_bench::emit_like_anchor("cohort_value_lock_incr", values, "increments/s");
  std::sort(values.begin(), values.end());
  std::fprintf(stderr, "value_lock_incr: %.3g increments/s (median of %zu; min %.3g, max %.3g)\n",
               values[values.size() / 2], values.size(), values.front(), values.back());
}
