// An Event set by one process and waited for by others: three waiters block until the setter has
// prepared the data they need, then all of them go at once.
#include <cohort/cohort.hpp>

#include <cstdio>
#include <memory>
#include <vector>

using namespace std::chrono_literals;

void waiter(int id, cohort::Event ready, cohort::Semaphore waiting, cohort::Value<int> data) {
  // Nobody has set the event yet (the setter waits for every waiter to report in), so this times out.
  const bool early = ready.wait(20ms);
  std::printf("waiter %d: wait(20ms) returned %s, still waiting\n", id, early ? "true" : "false");
  std::fflush(stdout);
  waiting.release();
  ready.wait();
  std::printf("waiter %d: saw the event, data = %d\n", id, data.get());
  std::fflush(stdout);
}

void setter(cohort::Event ready, cohort::Semaphore waiting, cohort::Value<int> data, int waiters) {
  for (int i = 0; i < waiters; ++i) waiting.acquire();
  data.set(42);
  std::printf("setter: data prepared, setting the event\n");
  std::fflush(stdout);
  ready.set();
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::Event ready;
  cohort::Semaphore waiting(0);
  cohort::Value<int> data(0);

  std::vector<std::unique_ptr<cohort::Process>> processes;
  for (int id = 1; id <= 3; ++id)
    processes.push_back(std::make_unique<cohort::Process>(waiter, id, ready, waiting, data));
  processes.push_back(std::make_unique<cohort::Process>(setter, ready, waiting, data, 3));
  for (auto& p : processes) p->start();

  int failed = 0;
  for (auto& p : processes) {
    p->join();
    if (p->exitcode() != 0) ++failed;
  }
  std::printf("event is set in the parent too: %s; processes that failed: %d\n", ready.is_set() ? "yes" : "no", failed);
}
