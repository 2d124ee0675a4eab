// One worker process per CPU takes numbers from a JoinableQueue, checks whether each is prime and sends the
// verdict back over a second Queue. join() returns once every number has been marked done; then one poison
// pill per worker stops them (Python's JoinableQueue pattern).
#include <cohort/cohort.hpp>

#include <cstdio>
#include <deque>
#include <utility>

constexpr long poison_pill = -1;

bool is_prime(long n) {
  if (n < 2) return false;
  for (long d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

void worker(cohort::JoinableQueue<long> tasks, cohort::Queue<std::pair<long, bool>> results) {
  for (;;) {
    const long n = tasks.get();
    if (n == poison_pill) {
      tasks.task_done();
      return;
    }
    results.put({n, is_prime(n)});
    tasks.task_done();  // after the result is out: once join() returns, every result is in `results`
  }
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  constexpr long limit = 10000;
  const int workers = cohort::cpu_count();
  cohort::JoinableQueue<long> tasks;
  cohort::Queue<std::pair<long, bool>> results;
  std::deque<cohort::Process> processes;
  for (int w = 0; w < workers; ++w) processes.emplace_back(worker, tasks, results);
  for (auto& p : processes) p.start();

  for (long n = 1; n <= limit; ++n) tasks.put(n);
  tasks.join();
  std::printf("all %ld numbers checked by %d workers, %zu results waiting\n", limit, workers, results.qsize());

  long primes = 0;
  long largest = 0;
  for (long i = 0; i < limit; ++i) {
    const auto [n, prime] = results.get();
    if (prime) {
      ++primes;
      if (n > largest) largest = n;
    }
  }
  std::printf("primes up to %ld: %ld, the largest %ld\n", limit, primes, largest);

  for (int w = 0; w < workers; ++w) tasks.put(poison_pill);
  tasks.join();
  int failed = 0;
  for (auto& p : processes) {
    p.join();
    if (p.exitcode() != 0) ++failed;
  }
  std::printf("workers stopped: %d, failed: %d\n", workers, failed);
  try {
    tasks.task_done();
  } catch (const cohort::Error& e) {
    std::printf("one task_done too many: %s\n", e.what());
  }
}
