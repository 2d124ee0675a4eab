// A worker of the "distributed processes" tutorial: connects to the master's manager with the authkey,
// takes numbers from the task queue until it stays empty for a second, and puts back their squares.
//
//   task_worker <host> <port> [--die-after N]    (N: SIGKILL itself on taking its Nth task)
#include <cohort/cohort.hpp>
#include <cohort/managed/queue.hpp>

#include <cereal/types/utility.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

using Result = std::pair<int, long>;

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--die-after")) {
    std::fprintf(stderr, "usage: task_worker <host> <port> [--die-after N]\n");
    return 2;
  }
  const auto port = static_cast<std::uint16_t>(std::stoi(argv[2]));
  const int die_after = argc == 5 ? std::atoi(argv[4]) : 0;

  cohort::BaseManager manager({.address = cohort::Address::tcp(argv[1], port), .authkey = "abc"});
  std::printf("worker %d: connecting to %s\n", ::getpid(), manager.address().to_string().c_str());
  manager.connect();
  auto tasks = manager.get<cohort::managed::Queue<int>>("task_queue");
  auto results = manager.get<cohort::managed::Queue<Result>>("result_queue");

  for (int taken = 1;; ++taken) {
    int n = 0;
    try {
      n = tasks.get(true, std::chrono::seconds(1));
    } catch (const cohort::Empty&) {
      break;
    }
    if (taken == die_after) {
      std::printf("worker: killed while holding task %d\n", n);
      std::fflush(stdout);
      std::raise(SIGKILL);
    }
    std::printf("worker: %d * %d = %ld\n", n, n, long{n} * n);
    results.put({n, long{n} * n});
  }
  std::printf("worker exit.\n");
  return 0;
}
