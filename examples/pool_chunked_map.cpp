// A CPU-bound map three ways: serially, with Pool.map one item per task, and with Pool.map choosing its
// chunksize as Python does (about four chunks per worker). Chunks cut the per-task messages.
#include <cohort/cohort.hpp>

#include <chrono>
#include <cstdio>
#include <numeric>
#include <vector>

namespace {

// Sum of the divisors of n, by trial division: a few microseconds of arithmetic per item.
long divisor_sum(long n) {
  long sum = 0;
  for (long d = 1; d * d <= n; ++d) {
    if (n % d != 0) continue;
    sum += d;
    if (d != n / d) sum += n / d;
  }
  return sum;
}

template <class F>
double timed_ms(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  std::vector<long> inputs(60'000);
  std::iota(inputs.begin(), inputs.end(), 1'000'000L);

  std::vector<long> serial;
  const double serial_ms = timed_ms([&] {
    for (long n : inputs) serial.push_back(divisor_sum(n));
  });

  cohort::Pool pool(static_cast<std::size_t>(cohort::cpu_count()));
  pool.map(divisor_sum, std::vector<long>{1, 2, 3});  // workers up and warm
  std::vector<long> one_by_one;
  std::vector<long> chunked;
  const double one_ms = timed_ms([&] { one_by_one = pool.map(divisor_sum, inputs, 1); });
  const double chunked_ms = timed_ms([&] { chunked = pool.map(divisor_sum, inputs); });

  std::printf("%zu items on %zu workers\n", inputs.size(), pool.processes());
  std::printf("serial:                  %8.1f ms\n", serial_ms);
  std::printf("Pool.map, chunksize 1:   %8.1f ms\n", one_ms);
  std::printf("Pool.map, chunksize auto:%8.1f ms (%.1fx serial)\n", chunked_ms, serial_ms / chunked_ms);
  std::printf("results match: %s\n", serial == one_by_one && serial == chunked ? "yes" : "no");
}
