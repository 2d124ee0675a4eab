// A counter actor: its methods are its messages, handled one at a time on the event loop, so its state
// needs no lock. Asked from a coroutine, called from a plain thread, told without a reply, found by name.
#include <cohort/cohort.hpp>

#include <iostream>
#include <thread>

using namespace std::chrono_literals;

class Counter {
 public:
  explicit Counter(int start = 0) : n_(start) {}
  int add(int k) { return n_ += k; }
  int get() const { return n_; }
  cohort::task<int> add_slowly(int k) {  // a coroutine method: nothing else runs on this actor meanwhile
    co_await cohort::sleep(10ms);
    co_return n_ += k;
  }
  void on_start() { std::cout << "counter started at " << n_ << "\n"; }
  void on_stop() { std::cout << "counter stopped at " << n_ << "\n"; }

 private:
  int n_;
};

cohort::task<void> main_task() {
  auto counter = cohort::spawn_actor<Counter>({.name = "counter"}, 10);
  std::cout << "ask add(5): " << co_await counter.ask(&Counter::add, 5) << "\n";
  std::cout << "ask add_slowly(2): " << co_await counter.ask(&Counter::add_slowly, 2) << "\n";

  // From a plain thread: call() sends at once and returns a Future.
  std::thread worker([counter] {
    for (int i = 0; i < 100; ++i) counter.tell(&Counter::add, 1);
    std::cout << "from a thread, call get(): " << counter.call(&Counter::get).get() << "\n";
  });
  co_await cohort::to_thread([&worker] { worker.join(); });  // join() would block the loop the actor runs on

  auto found = cohort::find_actor<Counter>("counter");
  std::cout << "found by name: " << (found && *found == counter ? "the same actor" : "none") << "\n";
  co_await counter.stop();
  try {
    counter.tell(&Counter::add, 1);
  } catch (const cohort::ActorDeadError& e) {
    std::cout << "after stop: " << e.what() << "\n";
  }
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::run(main_task());
}
