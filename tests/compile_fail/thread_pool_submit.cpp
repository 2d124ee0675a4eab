// ThreadPoolExecutor::submit with a call fn cannot take fails with one static_assert; the valid call
// with a move-only argument taken by value compiles.
#include "cohort/thread_pool_executor.hpp"

#include <memory>

int read_value(std::unique_ptr<int> p) { return *p; }

int main() {
  cohort::ThreadPoolExecutor pool(1);
#ifdef COHORT_MUST_NOT_COMPILE
  auto f = pool.submit(read_value, 5);  // an int for a std::unique_ptr<int>
#else
  auto f = pool.submit(read_value, std::make_unique<int>(5));
#endif
  f.wait();
}
