// The process tests' entry point: like every cohort program, it calls cohort::init first. ctest runs the
// suite once per start method, named by COHORT_TEST_START_METHOD.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cohort/cohort.hpp>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

int main(int argc, char** argv) {
  // Lets a test start a spawn child that dies before it reaches init(), as a program without init would.
  if (std::getenv("COHORT_TEST_EXIT_BEFORE_INIT") && std::getenv("COHORT_WORKER")) ::_exit(3);
  cohort::init(argc, argv);
  if (const char* method = std::getenv("COHORT_TEST_START_METHOD")) {
    const std::string_view name = method;
    if (name == "fork")
      cohort::set_start_method(cohort::StartMethod::fork);
    else if (name == "spawn")
      cohort::set_start_method(cohort::StartMethod::spawn);
    else if (name == "forkserver")
      cohort::set_start_method(cohort::StartMethod::forkserver);
    else
      throw std::invalid_argument("COHORT_TEST_START_METHOD must be fork, spawn or forkserver");
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
