// A program outside cohort's tree, built against it the way a user's project is.
#include <cohort/cohort.hpp>

#include <iostream>

cohort::task<int> doubled(cohort::ThreadPoolExecutor& pool, int x) {
  co_return co_await cohort::run_in_executor(pool, [](int v) { return v * 2; }, x);
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::ThreadPoolExecutor pool(2);
  std::cout << "consumer result " << cohort::run(doubled(pool, 21)) << '\n';
}
