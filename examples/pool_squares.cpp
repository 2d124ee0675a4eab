// Python's first Pool example: `with Pool(5) as p: print(p.map(f, [1, 2, 3]))`, over 1..10. The block
// ends the pool the way Python's `with` does: the destructor terminates the workers.
#include <cohort/cohort.hpp>

#include <iostream>
#include <numeric>
#include <vector>

namespace {

int f(int x) { return x * x; }

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);

  std::vector<int> inputs(10);
  std::iota(inputs.begin(), inputs.end(), 1);

  std::vector<int> workers;
  {
    cohort::Pool p(5);
    const std::vector<int> squares = p.map(f, inputs);
    std::cout << "[";
    for (std::size_t i = 0; i < squares.size(); ++i) std::cout << (i ? ", " : "") << squares[i];
    std::cout << "]" << std::endl;
    workers = p.worker_pids();
  }  // like leaving `with Pool(5) as p:`

  std::cout << workers.size() << " workers served the map; after the block, active children: "
            << cohort::active_children().size() << std::endl;
}
