// A child that would run for a minute: join with a timeout gives up, terminate() ends it, and the exit
// code tells it was SIGTERM (-15), as in Python.
#include <cohort/cohort.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

void sleepy() { std::this_thread::sleep_for(60s); }

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::Process p(sleepy);
  p.start();
  const auto start = std::chrono::steady_clock::now();
  const bool ended = p.join(500ms);
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf("join(500ms) returned %s after about %lld00 ms; alive: %s\n", ended ? "true" : "false",
              static_cast<long long>((waited.count() + 50) / 100), p.is_alive() ? "yes" : "no");
  std::printf("exitcode while running: %s\n", p.exitcode() ? "set" : "none");
  p.terminate();
  p.join();
  std::printf("after terminate: alive: %s, exitcode: %d\n", p.is_alive() ? "yes" : "no", *p.exitcode());
}
