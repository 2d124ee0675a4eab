// A coroutine gathers ten run_in_executor calls on a ProcessPoolExecutor; each call blocks its worker
// for one second, so the ten finish in about ten seconds divided by the number of workers, and the event
// loop stays free the whole time (Python: asyncio.gather of loop.run_in_executor(pool, ...)).
#include <unistd.h>

#include <cohort/cohort.hpp>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Blocking work: a second of sleep, standing in for a call that holds its process.
int blocking_task(int n) {
  std::this_thread::sleep_for(1s);
  return n * 10;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  constexpr std::size_t workers = 5;
  cohort::ProcessPoolExecutor pool(workers);

  const auto [results, ticks, elapsed] = cohort::run([&]() -> cohort::task<std::tuple<std::vector<int>, int, double>> {
    // A ticker proves the loop is not blocked while the work runs in the pool. (Its counter is a
    // parameter, not a lambda capture: a coroutine lambda's captures die with the lambda object.)
    int ticks = 0;
    auto ticker = cohort::spawn([](int& count) -> cohort::task<void> {
      for (;;) {
        co_await cohort::sleep(100ms);
        ++count;
      }
    }(ticks));
    const auto start = std::chrono::steady_clock::now();
    std::vector<cohort::task<int>> calls;
    for (int n = 0; n < 10; ++n) calls.push_back(cohort::run_in_executor(pool, blocking_task, n));
    auto values = co_await cohort::gather(std::move(calls));
    const double elapsed = seconds_since(start);
    ticker.cancel();
    co_return std::tuple{std::move(values), ticks, elapsed};
  }());

  std::printf("results:");
  for (int r : results) std::printf(" %d", r);
  std::printf("\nten one-second tasks on %zu workers took %.1f s (10 s / %zu workers = %.1f s)\n", workers, elapsed,
              workers, 10.0 / workers);
  std::printf("the loop ticked %d times meanwhile\n", ticks);
}
