// Five apply_async calls on a Pool of four: four start at once, the fifth waits until a worker is free.
#include <unistd.h>

#include <cohort/cohort.hpp>

#include <chrono>
#include <iostream>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct Started {
  int task = 0;
  int pid = 0;
  long long at_ms = 0;  // when the task began, on the shared system clock

  template <class Archive>
  void serialize(Archive& archive) {
    archive(task, pid, at_ms);
  }
};

long long now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Half a second of blocking work that reports when and where it started.
Started work(int task) {
  const Started started{task, ::getpid(), now_ms()};
  std::this_thread::sleep_for(500ms);
  return started;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::Pool pool(4);
  pool.apply(work, std::tuple{-1});  // every worker is up before the clock starts

  const long long start = now_ms();
  std::vector<cohort::AsyncResult<Started>> results;
  for (int task = 0; task < 5; ++task) results.push_back(pool.apply_async(work, std::tuple{task}));

  long long fifth = 0;
  for (auto& result : results) {
    const Started s = result.get();
    const long long offset = s.at_ms - start;
    std::cout << "task " << s.task << " started after " << offset << " ms in worker " << s.pid << std::endl;
    if (s.task == 4) fifth = offset;
  }
  std::cout << "task 4 waited for a free worker: " << (fifth >= 450 ? "yes" : "no") << std::endl;
  pool.close();
  pool.join();
}
