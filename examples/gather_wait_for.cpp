// Shows gather, which runs coroutines concurrently and returns their results in argument order, and
// wait_for, which gives a coroutine a time limit and cancels it when that passes (Python: asyncio.gather,
// asyncio.wait_for).
#include <cohort/cohort.hpp>

#include <chrono>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

long long ms_since(steady::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
}

// Three lookups of different types and speeds; the first argument to gather is the slowest.
cohort::task<std::string> fetch_user() {
  co_await cohort::sleep(300ms);
  std::cout << "  finished: user" << std::endl;
  co_return "alice";
}

cohort::task<int> count_orders() {
  co_await cohort::sleep(100ms);
  std::cout << "  finished: orders" << std::endl;
  co_return 3;
}

cohort::task<double> fetch_price() {
  co_await cohort::sleep(200ms);
  std::cout << "  finished: price" << std::endl;
  co_return 9.5;
}

// What the slow coroutine reports about its own end.
struct Probe {
  bool saw_cancel = false;
  bool cleaned_up = false;
  cohort::Promise<void> cleanup_done;
};

// Runs when the coroutine's frame is destroyed, however it ends: where a real task releases what it holds.
struct Cleanup {
  Probe& probe;
  ~Cleanup() {
    probe.cleaned_up = true;
    std::cout << "  slow_report: cleanup ran" << std::endl;
    probe.cleanup_done.set_value();
  }
};

cohort::task<std::string> slow_report(Probe& probe) {
  Cleanup cleanup{probe};
  try {
    co_await cohort::sleep(5s);
  } catch (const cohort::CancelledError&) {
    // Cancellation arrives as an exception at the suspension point; rethrowing lets the task end cancelled.
    probe.saw_cancel = true;
    std::cout << "  slow_report: cancelled while sleeping" << std::endl;
    throw;
  }
  std::cout << "  slow_report: finished" << std::endl;
  co_return "report";
}

cohort::task<std::string> quick_report() {
  co_await cohort::sleep(50ms);
  co_return "ready";
}

cohort::task<void> demo() {
  std::cout << "gather(fetch_user, count_orders, fetch_price):" << std::endl;
  const auto start = steady::now();
  const auto [user, orders, price] = co_await cohort::gather(fetch_user(), count_orders(), fetch_price());
  std::cout << "gather results: user=" << user << " orders=" << orders << " price=" << price << std::endl;
  // About 300 ms, the slowest lookup, rather than the 600 ms they add up to.
  std::cout << "gather took " << ms_since(start) << " ms" << std::endl;

  std::cout << "wait_for(slow_report, 200ms):" << std::endl;
  Probe probe;
  const auto cleanup_done = probe.cleanup_done.get_future();
  try {
    const auto report = co_await cohort::wait_for(slow_report(probe), 200ms);
    std::cout << "  returned " << report << std::endl;
  } catch (const cohort::TimeoutError& error) {
    std::cout << "  TimeoutError: " << error.what() << std::endl;
  }
  // The cancellation is delivered to slow_report as a message on the loop, so its cleanup may still be on
  // the way when TimeoutError arrives; `probe` must outlive it in any case.
  co_await cohort::wait_for(cleanup_done.async_get(), 1s);
  std::cout << "inner task cancelled: " << (probe.saw_cancel ? "yes" : "no")
            << ", cleanup ran: " << (probe.cleaned_up ? "yes" : "no") << std::endl;

  std::cout << "wait_for(quick_report, 1s):" << std::endl;
  std::cout << "quick_report returned: " << co_await cohort::wait_for(quick_report(), 1s) << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::run(demo());
}
