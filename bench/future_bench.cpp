// Benchmark 1: the single-threaded cost of one future's life (create, set, get), cohort vs std.
#include <benchmark/benchmark.h>

#include <future>

#include <cohort/cohort.hpp>

namespace {

void future_set_get_cohort(benchmark::State& state) {
  int i = 0;
  for (auto _ : state) {
    cohort::Promise<int> p;
    auto f = p.get_future();
    p.set_value(i);
    benchmark::DoNotOptimize(f.get());
    ++i;
  }
}
BENCHMARK(future_set_get_cohort)->Repetitions(5);

void future_set_get_std(benchmark::State& state) {
  int i = 0;
  for (auto _ : state) {
    std::promise<int> p;
    auto f = p.get_future();
    p.set_value(i);
    benchmark::DoNotOptimize(f.get());
    ++i;
  }
}
BENCHMARK(future_set_get_std)->Repetitions(5);

}  // namespace
