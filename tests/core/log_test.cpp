#include "cohort/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace {

TEST(Log, LinesCarryProcessNamePidAndThread) {
  testing::internal::CaptureStderr();
  auto logger = cohort::log_to_stderr(cohort::LogLevel::info);
  logger->info("hello from the test");
  logger->debug("hidden at info level");
  const auto output = testing::internal::GetCapturedStderr();
  EXPECT_NE(output.find("hello from the test"), std::string::npos) << output;
  EXPECT_NE(output.find("MainProcess " + std::to_string(::getpid()) + " tid "), std::string::npos) << output;
  EXPECT_EQ(output.find("hidden at info level"), std::string::npos) << output;
}

TEST(Log, TheLevelIsHandedToChildProcessesThroughTheEnvironment) {
  cohort::log_to_stderr(cohort::LogLevel::debug);
  ASSERT_NE(std::getenv("COHORT_LOG_LEVEL"), nullptr);
  EXPECT_STREQ(std::getenv("COHORT_LOG_LEVEL"), "debug");
  cohort::get_logger()->set_level(spdlog::level::err);
  cohort::detail::apply_inherited_log_level();
  EXPECT_EQ(cohort::get_logger()->level(), spdlog::level::debug);
}

TEST(Log, ProcessNameCanBeChanged) {
  EXPECT_EQ(cohort::process_name(), "MainProcess");
  cohort::detail::set_process_name("Worker-1");
  testing::internal::CaptureStderr();
  cohort::log_to_stderr(cohort::LogLevel::info)->info("named");
  const auto output = testing::internal::GetCapturedStderr();
  EXPECT_NE(output.find("Worker-1"), std::string::npos) << output;
  cohort::detail::set_process_name("MainProcess");
}

}  // namespace
