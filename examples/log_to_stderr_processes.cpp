// log_to_stderr in the parent: children inherit the level and write to the same stderr, and every line
// names the process it came from.
#include <cohort/cohort.hpp>

#include <spdlog/spdlog.h>

#include <string>

void child_task(int number) {
  cohort::get_logger()->info("child {} doing its work", number);
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  auto logger = cohort::log_to_stderr(cohort::LogLevel::info);
  logger->info("parent starting two children");
  cohort::Process a({.name = "child-a"}, child_task, 1);
  cohort::Process b({.name = "child-b"}, child_task, 2);
  a.start();
  b.start();
  a.join();
  b.join();
  logger->info("parent done");
}
