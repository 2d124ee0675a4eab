// A supervised process actor that is killed and comes back: the call it was handling fails with
// ActorDeadError naming the signal, the calls queued behind it are served by the new worker process.
#include <cohort/cohort.hpp>

#include <signal.h>
#include <unistd.h>

#include <iostream>

class Worker {
 public:
  explicit Worker(long start) : total_(start) {}
  long add(long k) { return total_ += k; }
  int pid() const { return ::getpid(); }
  void crash() { ::raise(SIGKILL); }

 private:
  long total_;
};

cohort::task<void> main_task() {
  cohort::Supervisor supervisor({.strategy = cohort::RestartStrategy::one_for_one, .max_restarts = 3,
                                 .within = std::chrono::seconds(5), .name = "workers"});
  auto worker = supervisor.spawn_process<Worker>({.name = "worker"}, 100L);
  const int first = co_await worker.ask(&Worker::pid);
  std::cout << "worker runs in process " << (first != ::getpid() ? "of its own" : "of the parent") << "\n";
  std::cout << "add(1): " << co_await worker.ask(&Worker::add, 1L) << "\n";

  auto crash = worker.call(&Worker::crash);
  auto queued = worker.call(&Worker::add, 5L);  // queued behind the crash
  try {
    co_await crash.async_get();
  } catch (const cohort::ActorDeadError& e) {
    std::cout << "the call in flight failed: " << e.what() << "\n";
  }
  std::cout << "the queued call was served by the new incarnation: add(5) = " << co_await queued.async_get() << "\n";
  const int second = co_await worker.ask(&Worker::pid);
  std::cout << "restarted in a new process: " << (second != first ? "yes" : "no") << "\n";
  supervisor.stop();
  co_await worker.async_join();
  std::cout << "stopped: " << (worker.alive() ? "no" : "yes") << "\n";
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::run(main_task());
}
