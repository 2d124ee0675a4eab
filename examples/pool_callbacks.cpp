// apply_async with a callback and an error callback (Python: apply_async(f, args, callback,
// error_callback)): each runs once per task, on the pool's result thread, as its task finishes.
#include <pthread.h>

#include <cohort/cohort.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

int cube(int x) {
  if (x == 4) throw std::invalid_argument("4 is not welcome here");
  std::this_thread::sleep_for(std::chrono::milliseconds(20 * x));
  return x * x * x;
}

std::string thread_name() {
  char name[16] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::log_to_stderr(cohort::LogLevel::info);
  const auto main_thread = std::this_thread::get_id();
  std::mutex mutex;
  std::vector<int> collected;
  std::atomic<int> on_main_thread{0};

  cohort::Pool pool(2);
  std::vector<cohort::AsyncResult<int>> results;
  for (int x = 1; x <= 6; ++x) {
    results.push_back(pool.apply_async(
        cube, std::tuple{x},
        [&, x](int value) {
          if (std::this_thread::get_id() == main_thread) ++on_main_thread;
          cohort::get_logger()->info("callback on thread '{}': cube({}) = {}", thread_name(), x, value);
          std::lock_guard lock(mutex);
          collected.push_back(value);
        },
        [&, x](std::exception_ptr error) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            cohort::get_logger()->info("error callback on thread '{}': cube({}) raised: {}", thread_name(), x, e.what());
          }
        }));
  }
  pool.close();
  pool.join();  // every task has finished, so every callback has run

  int sum = 0;
  for (int value : collected) sum += value;
  std::cout << "callbacks collected " << collected.size() << " results, sum " << sum << std::endl;
  std::cout << "callbacks run on the main thread: " << on_main_thread.load() << std::endl;
  std::cout << "successful: ";
  for (auto& r : results) std::cout << (r.successful() ? 'y' : 'n');
  std::cout << std::endl;
}
