// Five processes written in the subclass style: each overrides run(), as `class Worker(Process)` does.
#include <cohort/cohort.hpp>

#include <cstdio>
#include <memory>
#include <vector>

class Worker : public cohort::Process {
 public:
  explicit Worker(int number) : cohort::Process({.name = "worker-" + std::to_string(number)}), number_(number) {}

 private:
  void run() override {
    std::printf("%s (pid %d) computes %d squared = %d\n", name().c_str(), cohort::current_process().pid, number_,
                number_ * number_);
  }

  int number_;
};

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 1; i <= 5; ++i) workers.push_back(std::make_unique<Worker>(i));
  for (auto& w : workers) w->start();
  for (auto& w : workers) w->join();
  int ok = 0;
  for (auto& w : workers) ok += w->exitcode() == 0;
  std::printf("%d of 5 workers exited with code 0\n", ok);
}
