// Shows Future and Promise without an event loop: results and exceptions handed between threads, done
// callbacks, and cohort::wait returning at the first finished future (Python: concurrent.futures.Future).
#include <cohort/cohort.hpp>

#include <chrono>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Callbacks print from the thread that completes the future, so lines need a lock to stay whole.
std::mutex print_mutex;

void say(const std::string& line) {
  std::lock_guard lock(print_mutex);
  std::cout << line << std::endl;
}

std::string pace(std::string name, std::chrono::milliseconds duration) {
  std::this_thread::sleep_for(duration);
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);

  // A Promise is the writing end: here a plain thread fulfils it, the main thread waits on the Future.
  {
    cohort::Promise<int> promise;
    cohort::Future<int> future = promise.get_future();
    future.add_done_callback([](const cohort::Future<int>& done) {
      say("callback saw " + std::to_string(done.get()));
    });
    std::thread producer([promise = std::move(promise)]() mutable {
      std::this_thread::sleep_for(100ms);
      promise.set_value(42);
    });
    say("get() returned " + std::to_string(future.get()));
    producer.join();
    // Registered after completion, a callback runs at once on the registering thread.
    future.add_done_callback([](const cohort::Future<int>& done) {
      say("late callback ran at once: " + std::to_string(done.get()));
    });
  }

  // An exception travels the same way and is rethrown, with its own type, by get().
  {
    cohort::Promise<double> promise;
    auto future = promise.get_future();
    promise.set_exception(std::make_exception_ptr(std::invalid_argument("negative input")));
    try {
      future.get();
    } catch (const std::invalid_argument& error) {
      say(std::string("get() rethrew std::invalid_argument: ") + error.what());
    }
  }

  // A Promise destroyed without a result does not leave its Future waiting forever.
  {
    cohort::Future<int> orphan;
    {
      cohort::Promise<int> promise;
      orphan = promise.get_future();
    }
    try {
      orphan.get();
    } catch (const cohort::BrokenPromise& error) {
      say(std::string("orphaned future: BrokenPromise: ") + error.what());
    }
  }

  // wait() with first_completed returns as soon as one future is done, leaving the others running.
  {
    cohort::ThreadPoolExecutor pool(3);
    std::vector<cohort::Future<std::string>> futures = {pool.submit(pace, std::string("slow"), 900ms),
                                                        pool.submit(pace, std::string("fast"), 100ms),
                                                        pool.submit(pace, std::string("medium"), 500ms)};
    auto [done, not_done] = cohort::wait(futures, 5s, cohort::ReturnWhen::first_completed);
    say("first_completed: " + std::to_string(done.size()) + " done (" + done.front().get() + "), " +
        std::to_string(not_done.size()) + " not done");
    auto all = cohort::wait(futures, 5s);  // all_completed is the default
    say("all_completed: " + std::to_string(all.done.size()) + " done, " +
        std::to_string(all.not_done.size()) + " not done");
  }
}
