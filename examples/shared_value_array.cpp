// Python's multiprocessing docs, "Sharing state between processes": a Value<double> and an Array<int>
// in shared memory, changed in place by a child and read back by the parent.
#include <cohort/cohort.hpp>

#include <cstdio>
#include <mutex>
#include <ranges>

void f(cohort::Value<double> n, cohort::Array<int> a) {
  n.set(3.1415927);
  std::lock_guard hold(a.get_lock());  // one child here, but it is how a multi-step change stays whole
  for (auto& x : a) x = -x;
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::Value<double> num(0.0);
  cohort::Array<int> arr(std::views::iota(0, 10));

  cohort::Process p(f, num, arr);  // the child gets the same shared memory, not copies of it
  p.start();
  p.join();

  std::printf("%.7f\n", num.get());
  std::printf("[");
  for (std::size_t i = 0; i < arr.size(); ++i) std::printf("%s%d", i == 0 ? "" : ", ", arr[i]);
  std::printf("]\n");
}
