// The README's quick start, kept here so that it is compiled and run with every test run.
#include <cohort/cohort.hpp>

#include <iostream>
#include <thread>

using namespace std::chrono_literals;

long slow_square(long x) {  // blocking work: runs on a pool thread
  std::this_thread::sleep_for(100ms);
  return x * x;
}

cohort::task<long> main_task(cohort::ThreadPoolExecutor& pool) {
  // Both calls run at once on the pool while the event loop stays free.
  auto [a, b] = co_await cohort::gather(cohort::run_in_executor(pool, slow_square, 3),
                                        cohort::run_in_executor(pool, slow_square, 4));
  co_return a + b;
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);  // first statement of every cohort program
  cohort::ThreadPoolExecutor pool(4);
  std::cout << cohort::run(main_task(pool)) << '\n';  // 25

  auto future = pool.submit(slow_square, 5);  // concurrent.futures style, from plain threads
  std::cout << future.get(1s) << '\n';        // 25, or TimeoutError
}
