#include "cohort/error.hpp"

#include <gtest/gtest.h>

#include <type_traits>

namespace {

template <class E>
constexpr bool is_cohort_error = std::is_base_of_v<cohort::Error, E> && std::is_base_of_v<std::runtime_error, E>;

TEST(Error, EveryErrorOfTheContractDerivesFromCohortError) {
  static_assert(is_cohort_error<cohort::TimeoutError>);
  static_assert(is_cohort_error<cohort::CancelledError>);
  static_assert(is_cohort_error<cohort::BrokenProcessPool>);
  static_assert(is_cohort_error<cohort::BrokenThreadPool>);
  static_assert(is_cohort_error<cohort::ProcessError>);
  static_assert(is_cohort_error<cohort::EOFError>);
  static_assert(is_cohort_error<cohort::Empty>);
  static_assert(is_cohort_error<cohort::Full>);
  static_assert(is_cohort_error<cohort::BrokenBarrierError>);
  static_assert(is_cohort_error<cohort::AuthenticationError>);
  static_assert(is_cohort_error<cohort::SerializationError>);
  static_assert(is_cohort_error<cohort::CalledProcessError>);
  static_assert(is_cohort_error<cohort::RemoteError>);
  static_assert(std::is_base_of_v<cohort::BrokenExecutor, cohort::BrokenProcessPool>);
  EXPECT_STREQ(cohort::TimeoutError("late").what(), "late");
}

TEST(Error, CalledProcessErrorCarriesStatusAndOutput) {
  const cohort::CalledProcessError error(2, {"ls", "-al", "/missing"}, "out", "err");
  EXPECT_EQ(error.returncode, 2);
  EXPECT_EQ(error.output, "out");
  EXPECT_EQ(error.stderr_output, "err");
  EXPECT_STREQ(error.what(), "Command 'ls -al /missing' returned non-zero exit status 2.");
  EXPECT_STREQ(cohort::CalledProcessError(-9, {"sleep"}).what(), "Command 'sleep' died with signal 9.");
}

TEST(Error, RemoteErrorCarriesTypeMessageAndTraceback) {
  const cohort::RemoteError error("my::Error", "it broke", "#0 f()\n#1 main()");
  EXPECT_EQ(error.remote_type(), "my::Error");
  EXPECT_STREQ(error.what(), "it broke");
  EXPECT_EQ(error.traceback(), "#0 f()\n#1 main()");
}

}  // namespace
