// A daemon child dies with its parent: the parent does not wait for it at exit (it is terminated), so
// its last line is never printed. A non-daemon child is waited for.
#include <cohort/cohort.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

void daemon_work() {
  std::printf("daemon child: starting\n");
  std::fflush(stdout);
  std::this_thread::sleep_for(10s);
  std::printf("daemon child: exiting\n");
}

void regular_work() {
  std::printf("regular child: starting\n");
  std::fflush(stdout);
  std::this_thread::sleep_for(300ms);
  std::printf("regular child: exiting\n");
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::Process d({.name = "daemon", .daemon = true}, daemon_work);
  cohort::Process n({.name = "non-daemon"}, regular_work);
  d.start();
  n.start();
  std::this_thread::sleep_for(100ms);
  std::printf("main: daemon alive: %s; main returns without joining\n", d.is_alive() ? "yes" : "no");
}
