// The benchmark binary's entry point: cohort::init must run first in every cohort program.
#include <benchmark/benchmark.h>

#include <cohort/cohort.hpp>

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
