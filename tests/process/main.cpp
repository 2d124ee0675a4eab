// The process tests' entry point: like every cohort program, it calls cohort::init first.
#include <gtest/gtest.h>

#include <cohort/cohort.hpp>

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
