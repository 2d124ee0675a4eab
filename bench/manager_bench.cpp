// Managers, as the Python anchors measure them (same workloads, same JSON lines, names "cohort_..."):
//   manager_dict_ops:   a child process does 5,000 pairs of d.set(i, i); d.get(i) on a Manager dict
//                       (10,000 round trips to the server), timing itself; ops/s (anchor 12).
//   manager_queue_rtt:  over TCP on loopback with an authkey, a client puts a number in a BaseManager's
//                       task queue and takes the answer from its result queue, which a worker process
//                       (connected with the authkey) fills; 2,000 round trips one at a time; us each.
//   manager_connect:    connect + mutual HMAC handshake + get of a proxy to a BaseManager over TCP on
//                       loopback, 200 times; us each.
// Usage: manager_bench [manager_dict_ops] [manager_queue_rtt] [manager_connect]
#include <cohort/cohort.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "anchor_driver.hpp"

namespace {

using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using Clock = std::chrono::steady_clock;
using IntDict = cohort::Proxy<cohort::managed::Dict<long, long>>;
using IntQueue = cohort::Proxy<cohort::managed::Queue<long>>;

constexpr long pairs = 5'000;
constexpr long round_trips = 2'000;
constexpr int connects = 200;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// The child of manager_dict_ops: its own repetitions, as ops/s, sent back through `out`.
void dict_child(IntDict d, cohort::Connection out) {
  for (long i = 0; i < 10; ++i) d.set(i, i);  // the proxy's connection opens before timing
  const auto values = measure_like_anchor([&] {
    long total = 0;
    const auto start = Clock::now();
    for (long i = 0; i < pairs; ++i) {
      d.set(i, i);
      total += d.get(i);
    }
    const double elapsed = seconds_since(start);
    if (total != pairs * (pairs - 1) / 2) throw std::logic_error("manager_dict_ops: wrong sum");
    return 2 * pairs / elapsed;
  });
  out.send(values);
}

/// The worker of manager_queue_rtt: answers every number with itself plus one, until it gets -1.
void echo_worker(std::uint16_t port) {
  cohort::BaseManager manager({.address = cohort::Address::tcp("127.0.0.1", port), .authkey = "bench"});
  manager.connect();
  auto tasks = manager.get<cohort::managed::Queue<long>>("tasks");
  auto results = manager.get<cohort::managed::Queue<long>>("results");
  for (;;) {
    const long n = tasks.get();
    if (n < 0) return;
    results.put(n + 1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  cohort::set_start_method(cohort::StartMethod::fork);
  const auto wanted = [&](const std::string& name) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; ++i)
      if (name == argv[i]) return true;
    return false;
  };

  if (wanted("manager_dict_ops")) {
    cohort::Manager manager;
    auto d = manager.dict<long, long>();
    auto [in, out] = cohort::Pipe(false);
    cohort::Process child(&dict_child, d, std::move(out));
    child.start();
    auto values = in.recv<std::vector<double>>();
    child.join();
    emit_like_anchor("cohort_manager_dict_ops", std::move(values), "ops/s");
  }

  if (wanted("manager_queue_rtt") || wanted("manager_connect")) {
    cohort::BaseManager master({.address = cohort::Address::tcp("127.0.0.1", 0), .authkey = "bench"});
    master.register_type<cohort::managed::Queue<long>>("tasks");
    master.register_type<cohort::managed::Queue<long>>("results");
    master.start();
    if (wanted("manager_queue_rtt")) {
      auto tasks = master.get<cohort::managed::Queue<long>>("tasks");
      auto results = master.get<cohort::managed::Queue<long>>("results");
      cohort::Process worker(&echo_worker, master.address().port());
      worker.start();
      emit_like_anchor("cohort_manager_queue_rtt", measure_like_anchor([&] {
                         const auto start = Clock::now();
                         for (long i = 0; i < round_trips; ++i) {
                           tasks.put(i);
                           if (results.get() != i + 1) throw std::logic_error("manager_queue_rtt: wrong answer");
                         }
                         return seconds_since(start) / round_trips * 1e6;
                       }),
                       "us/round trip");
      tasks.put(-1);
      worker.join();
    }
    if (wanted("manager_connect")) {
      emit_like_anchor("cohort_manager_connect", measure_like_anchor([&] {
                         const auto start = Clock::now();
                         for (int i = 0; i < connects; ++i) {
                           cohort::BaseManager client({.address = master.address(), .authkey = "bench"});
                           client.connect();
                           (void)client.get<cohort::managed::Queue<long>>("tasks");
                         }
                         return seconds_since(start) / connects * 1e6;
                       }),
                       "us/connect");
    }
    master.shutdown();
  }
  return 0;
}
