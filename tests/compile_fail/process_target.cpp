// Process(target, args...) with a call the target cannot take fails with one static_assert that says
// why; the same program with a valid call compiles. Built by ctest with and without COHORT_MUST_NOT_COMPILE.
#include "cohort/connection.hpp"
#include "cohort/process.hpp"

#include <string>
#include <utility>

void worker(cohort::Connection conn, int times) {
  for (int i = 0; i < times; ++i) conn.send(i);
}

int main() {
  auto [a, b] = cohort::Pipe();
#ifdef COHORT_MUST_NOT_COMPILE
  cohort::Process p(worker, std::move(b), std::string("three"));  // a string for an int
#else
  cohort::Process p(worker, std::move(b), 3);
#endif
  p.start();
  p.join();
}
