// Queue throughput between a producer process and a consumer process, measured as anchors/queue_small.py
// and anchors/queue_1mb.py measure Python's multiprocessing.Queue: per repetition a fresh queue and fresh
// processes, both report ready before the clock starts, and the timed region runs from the parent's "go"
// until the consumer's result arrives. Prints one JSON line per workload ("cohort_" + the anchor's name).
// Usage: queue_throughput [queue_small] [queue_1mb]
#include <cohort/cohort.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>

#include "anchor_driver.hpp"

namespace {

using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using cohort_bench::seconds_since;
using Clock = std::chrono::steady_clock;

// As in the anchors: the processes are forked, and their start-up is outside the timed region.
const cohort::ProcessOptions forked{.start_method = cohort::StartMethod::fork};

void small_producer(cohort::Queue<long> q, long n, cohort::Queue<int> ready, cohort::Queue<int> go) {
  ready.put(1);
  go.get();
  for (long i = 0; i < n; ++i) q.put(i);
}

void small_consumer(cohort::Queue<long> q, long n, cohort::Queue<int> ready, cohort::Queue<long> result) {
  ready.put(1);
  long total = 0;
  for (long i = 0; i < n; ++i) total += q.get();
  result.put(total);
}

void large_producer(cohort::Queue<std::string> q, long n, long size, cohort::Queue<int> ready, cohort::Queue<int> go) {
  const std::string payload(static_cast<std::size_t>(size), '\xa5');
  ready.put(1);
  go.get();
  for (long i = 0; i < n; ++i) q.put(payload);
}

void large_consumer(cohort::Queue<std::string> q, long n, cohort::Queue<int> ready, cohort::Queue<long> result) {
  ready.put(1);
  long bytes = 0;
  for (long i = 0; i < n; ++i) bytes += static_cast<long>(q.get().size());
  result.put(bytes);
}

/// One repetition: starts both processes, waits until both are ready, then times go -> result. Returns the
/// seconds elapsed and checks the consumer's result.
template <class T, class Producer, class Consumer, class... ProducerArgs>
double run_once(Producer producer, Consumer consumer, long n, long expected, ProducerArgs... producer_args) {
  cohort::Queue<T> q;
  cohort::Queue<int> ready;
  cohort::Queue<int> go;
  cohort::Queue<long> result;
  cohort::Process p(forked, producer, q, n, producer_args..., ready, go);
  cohort::Process c(forked, consumer, q, n, ready, result);
  p.start();
  c.start();
  ready.get();
  ready.get();
  const auto start = Clock::now();
  go.put(1);
  const long got = result.get();
  const double elapsed = seconds_since(start);
  p.join();
  c.join();
  if (p.exitcode() != 0 || c.exitcode() != 0 || got != expected) std::abort();
  return elapsed;
}

void queue_small() {
  constexpr long n = 200'000;
  const auto values =
      measure_like_anchor([] { return n / run_once<long>(small_producer, small_consumer, n, n * (n - 1) / 2); });
  emit_like_anchor("cohort_queue_small", values, "msgs/s");
}

void queue_1mb() {
  constexpr long n = 500;
  constexpr long size = 1 << 20;
  const auto values = measure_like_anchor(
      [] { return n * size / run_once<std::string>(large_producer, large_consumer, n, n * size, size) / 1e6; });
  emit_like_anchor("cohort_queue_1mb", values, "MB/s");
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  auto wanted = [&](std::string_view name) { return cohort_bench::workload_wanted(argc, argv, name); };
  if (wanted("queue_small")) queue_small();
  if (wanted("queue_1mb")) queue_1mb();
}
