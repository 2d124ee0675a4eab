// Process start-up and Pipe latency, measured as anchors/pipe_pingpong.py and anchors/spawn_join.py
// measure Python's: prints one JSON line per workload ("cohort_" + the anchor's name).
// pipe_pingpong_async is the same round trip between two coroutines, each on a loop of its own (the
// parent's and the child's): the floor under a process actor's call, which adds the actor to each side.
// Usage: cohort_process_bench [pipe_pingpong] [pipe_pingpong_async] [spawn_join_fork] [spawn_join_spawn]
//                             [spawn_join_forkserver]
#include <cohort/cohort.hpp>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "anchor_driver.hpp"

namespace {

using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using cohort_bench::seconds_since;
using Clock = std::chrono::steady_clock;

void echo(cohort::Connection& conn) {
  for (;;) {
    const auto x = conn.recv<std::optional<long>>();
    if (!x) break;
    conn.send(x);
  }
}

void pipe_pingpong() {
  constexpr long n = 20'000;
  auto [parent, child] = cohort::Pipe(true);
  cohort::Process p({.start_method = cohort::StartMethod::fork}, echo, std::move(child));
  p.start();
  child.close();
  const auto values = measure_like_anchor([&parent = parent] {
    std::optional<long> r;
    const auto start = Clock::now();
    for (long i = 0; i < n; ++i) {
      parent.send(std::optional<long>(i));
      r = parent.recv<std::optional<long>>();
    }
    const double elapsed = seconds_since(start);
    if (r != n - 1) std::abort();
    return elapsed / n * 1e6;
  });
  parent.send(std::optional<long>());
  p.join();
  if (p.exitcode() != 0) std::abort();
  emit_like_anchor("cohort_pipe_pingpong", values, "us/roundtrip");
}

/// echo's loop: awaits each message on the child's loop and sends it back.
void async_echo(cohort::Connection conn) {
  cohort::Runtime runtime(1);
  runtime.run([](cohort::Connection& c) -> cohort::task<void> {
    for (;;) {
      const auto x = co_await c.async_recv<std::optional<long>>();
      if (!x) break;
      co_await c.async_send(x);
    }
  }(conn));
}

void pipe_pingpong_async() {
  constexpr long n = 20'000;
  auto [parent, child] = cohort::Pipe(true);
  cohort::Process p({.start_method = cohort::StartMethod::fork}, async_echo, std::move(child));
  p.start();
  child.close();
  cohort::Runtime runtime(1);
  const auto values = measure_like_anchor([&] {
    return runtime.run([](cohort::Connection& c) -> cohort::task<double> {
      std::optional<long> r;
      const auto start = Clock::now();
      for (long i = 0; i < n; ++i) {
        co_await c.async_send(std::optional<long>(i));
        r = co_await c.async_recv<std::optional<long>>();
      }
      if (r != n - 1) std::abort();
      co_return seconds_since(start) / n * 1e6;
    }(parent));
  });
  parent.send(std::optional<long>());
  p.join();
  if (p.exitcode() != 0) std::abort();
  emit_like_anchor("cohort_pipe_pingpong_async", values, "us/roundtrip");
}

void noop() {}

void spawn_join(cohort::StartMethod method, int count) {
  const auto values = measure_like_anchor([&] {
    const auto start = Clock::now();
    for (int i = 0; i < count; ++i) {
      cohort::Process p({.start_method = method}, noop);
      p.start();
      p.join();
      if (p.exitcode() != 0) std::abort();
    }
    return seconds_since(start) / count * 1e3;
  });
  emit_like_anchor(std::string("cohort_spawn_join_") + cohort::to_string(method), values, "ms/process");
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  auto wanted = [&](std::string_view name) { return cohort_bench::workload_wanted(argc, argv, name); };
  if (wanted("pipe_pingpong")) pipe_pingpong();
  if (wanted("pipe_pingpong_async")) pipe_pingpong_async();
  if (wanted("spawn_join_fork")) spawn_join(cohort::StartMethod::fork, 100);
  if (wanted("spawn_join_spawn")) spawn_join(cohort::StartMethod::spawn, 20);
  if (wanted("spawn_join_forkserver")) spawn_join(cohort::StartMethod::forkserver, 20);
}
