// An actor whose coroutine method offloads CPU-heavy work to a process pool: the event loop (and another
// actor on it) keeps answering while the primes are counted in other processes.
#include <cohort/cohort.hpp>

#include <chrono>
#include <iostream>

using namespace std::chrono_literals;

long count_primes(long from, long to) {
  long count = 0;
  for (long n = std::max(from, 2L); n < to; ++n) {
    bool prime = true;
    for (long d = 2; d * d <= n; ++d)
      if (n % d == 0) {
        prime = false;
        break;
      }
    count += prime;
  }
  return count;
}

class PrimeService {
 public:
  explicit PrimeService(cohort::ProcessPoolExecutor& pool) : pool_(pool) {}
  cohort::task<long> count_below(long limit) {
    std::vector<cohort::task<long>> parts;
    const long step = limit / 4;
    for (long from = 0; from < limit; from += step)
      parts.push_back(cohort::run_in_executor(pool_, count_primes, from, std::min(from + step, limit)));
    long total = 0;
    for (long part : co_await cohort::gather(std::move(parts))) total += part;
    co_return total;
  }

 private:
  cohort::ProcessPoolExecutor& pool_;
};

class Echo {
 public:
  int ping(int n) { return n; }
};

cohort::task<void> main_task(cohort::ProcessPoolExecutor& pool) {
  auto primes = cohort::spawn_actor<PrimeService>(pool);
  auto echo = cohort::spawn_actor<Echo>();
  const auto start = std::chrono::steady_clock::now();
  auto counting = primes.call(&PrimeService::count_below, 2'000'000L);
  int pings = 0;
  while (!counting.done()) {  // the loop stays free: the echo actor answers meanwhile
    pings += co_await echo.ask(&Echo::ping, 1);
    co_await cohort::sleep(1ms);
  }
  const long count = co_await counting.async_get();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::cout << "primes below 2000000: " << count << "\n";
  std::cout << "the echo actor answered " << (pings > 0 ? "meanwhile" : "never") << " (" << pings << " pings in "
            << ms.count() << " ms)\n";
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::ProcessPoolExecutor pool(2);
  cohort::run(main_task(pool));
}
