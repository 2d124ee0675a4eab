// The master of the "distributed processes" tutorial: a task queue and a result queue served at a TCP
// address with an authkey; workers, separate programs that may run on other machines, connect, take
// numbers and put back their squares. Here the first worker is killed after taking its fourth task: the
// tasks it had not taken wait in the queue for the next worker, and the one it died holding is put
// again, so every square still arrives once.
//
//   task_master <path of task_worker>
#include <cohort/cohort.hpp>
#include <cohort/managed/queue.hpp>

#include <cereal/types/utility.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <utility>

using Result = std::pair<int, long>;  // a number and its square

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: task_master <path of task_worker>\n");
    return 2;
  }
  const std::string worker = argv[1];

  cohort::BaseManager master({.address = cohort::Address::tcp("127.0.0.1", 0), .authkey = "abc"});
  master.register_type<cohort::managed::Queue<int>>("task_queue");
  master.register_type<cohort::managed::Queue<Result>>("result_queue");
  master.start();
  std::printf("master: serving at %s\n", master.address().to_string().c_str());
  auto tasks = master.get<cohort::managed::Queue<int>>("task_queue");
  auto results = master.get<cohort::managed::Queue<Result>>("result_queue");

  std::vector<int> put;
  for (int i = 0; i < 10; ++i) {
    const int n = 3 + i * 7 % 10;
    put.push_back(n);
    tasks.put(n);
  }
  std::printf("master: put 10 tasks\n");
  std::fflush(stdout);

  const std::string port = std::to_string(master.address().port());
  const auto first = cohort::subprocess::run({worker, "127.0.0.1", port, "--die-after", "4"});
  std::printf("master: the first worker ended with %d\n", first.returncode);

  // The tasks taken are the first ones put (the queue is FIFO); those taken without an answer died with
  // the worker.
  std::map<int, long> squares;
  bool duplicate = false;
  const auto record = [&](const Result& result) { duplicate |= !squares.emplace(result).second; };
  for (;;) {
    try {
      record(results.get_nowait());
    } catch (const cohort::Empty&) {
      break;
    }
  }
  const std::size_t answered = squares.size();
  const std::size_t waiting = tasks.qsize();
  const std::size_t taken = put.size() - waiting;
  std::printf("master: %zu answered, %zu still waiting, %zu lost with the worker\n", answered, waiting, taken - answered);
  for (std::size_t i = answered; i < taken; ++i) {
    std::printf("master: putting task %d again\n", put[i]);
    tasks.put(put[i]);
  }
  std::fflush(stdout);

  const auto second = cohort::subprocess::run({worker, "127.0.0.1", port});
  std::printf("master: the second worker ended with %d\n", second.returncode);
  for (std::size_t got = answered; got < put.size(); ++got) record(results.get(true, std::chrono::seconds(5)));

  bool right = !duplicate && squares.size() == put.size();
  for (const int n : put) right = right && squares.count(n) == 1 && squares[n] == long{n} * n;
  std::printf("master: %zu results, %s\n", squares.size(), right ? "every square once" : "WRONG");
  master.shutdown();
  std::printf("master exit.\n");
  return right ? 0 : 1;
}
