#include "cohort/remote_exception.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cohort/codec.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/detail/throw_site.hpp"
#include "cohort/error.hpp"

namespace {

struct InventoryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct UnknownHereError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FinalError final : std::logic_error {
  using std::logic_error::logic_error;
};

/// What a worker does with a failed call and its caller with the reply: describe, serialize, rethrow.
template <class Throw>
void cross(Throw&& thrower) {
  cohort::detail::RemoteFailure failure;
  try {
    thrower();
    FAIL() << "nothing was thrown";
  } catch (...) {
    failure = cohort::detail::describe_failure(std::current_exception());
  }
  cohort::detail::rethrow_failure(cohort::loads<cohort::detail::RemoteFailure>(cohort::dumps(failure)));
}

[[gnu::noinline]] void throw_from_deep_inside() { throw UnknownHereError("deep inside"); }

/// The address of a trace's first frame, as boost::stacktrace writes it (" 0# 0x00005599... in ...").
std::uintptr_t first_frame_address(const std::string& trace) {
  const auto at = trace.find("0x");
  return at == std::string::npos ? 0 : std::stoull(trace.substr(at + 2, 16), nullptr, 16);
}

// A process that records throw sites (as pool workers do) sends the trace of where the exception was
// thrown: its first frame is the throwing function, which the trace taken where it is caught has lost.
TEST(RemoteException, TheTraceStartsWhereTheExceptionWasThrownWhenThrowSitesAreRecorded) {
  cohort::detail::record_throw_sites();
  std::string trace;
  try {
    throw_from_deep_inside();
  } catch (...) {
    trace = cohort::detail::describe_failure(std::current_exception()).traceback;
  }
  const auto start = reinterpret_cast<std::uintptr_t>(&throw_from_deep_inside);
  const auto first = first_frame_address(trace);
  if (trace.substr(0, trace.find('\n')).find("throw_from_deep_inside") == std::string::npos) {
    EXPECT_GE(first, start) << trace;
    EXPECT_LT(first, start + 256) << trace;
  }
  // Another exception object than the last one thrown is described where it is caught.
  const auto other = cohort::detail::describe_failure(std::make_exception_ptr(UnknownHereError("made")));
  EXPECT_FALSE(other.traceback.empty());
  EXPECT_NE(other.traceback, trace);
}

TEST(RemoteException, StandardTypesKeepTheirTypeMessageAndTrace) {
  try {
    cross([] { throw std::invalid_argument("negative input: -3"); });
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "negative input: -3");
    const auto trace = cohort::remote_traceback(e);
    ASSERT_TRUE(trace.has_value());
    EXPECT_FALSE(trace->empty());
  }
  EXPECT_THROW(cross([] { throw std::out_of_range("index 9"); }), std::out_of_range);
  EXPECT_THROW(cross([] { throw cohort::TimeoutError("slow"); }), cohort::TimeoutError);
}

TEST(RemoteException, UnknownTypesArriveAsRemoteErrorNamingTheType) {
  try {
    cross([] { throw UnknownHereError("the shelf is empty"); });
    FAIL() << "nothing was rethrown";
  } catch (const cohort::RemoteError& e) {
    EXPECT_NE(e.remote_type().find("UnknownHereError"), std::string::npos) << e.remote_type();
    EXPECT_STREQ(e.what(), "the shelf is empty");
    EXPECT_FALSE(e.traceback().empty());
  }
}

TEST(RemoteException, ExceptionsThatAreNotStdExceptionsAreNamedToo) {
  try {
    cross([] { throw 42; });
    FAIL() << "nothing was rethrown";
  } catch (const cohort::RemoteError& e) {
    EXPECT_EQ(e.remote_type(), "int");
  }
}

TEST(RemoteException, RegisteredUserTypesKeepTheirType) {
  cohort::register_exception<InventoryError>();
  cohort::register_exception<FinalError>();
  try {
    cross([] { throw InventoryError("3 widgets missing"); });
    FAIL() << "nothing was rethrown";
  } catch (const InventoryError& e) {
    EXPECT_STREQ(e.what(), "3 widgets missing");
    EXPECT_TRUE(cohort::remote_traceback(e).has_value());
  }
  EXPECT_THROW(cross([] { throw FinalError("sealed"); }), FinalError);
}

// A failure passed on through a second hop keeps the type and trace of where it started.
TEST(RemoteException, ASecondHopKeepsTheOrigin) {
  cohort::detail::RemoteFailure first;
  try {
    throw UnknownHereError("deep down");
  } catch (...) {
    first = cohort::detail::describe_failure(std::current_exception());
  }
  for (int hop = 0; hop < 2; ++hop) {
    cohort::detail::RemoteFailure next;
    try {
      cohort::detail::rethrow_failure(first);
    } catch (...) {
      next = cohort::detail::describe_failure(std::current_exception());
    }
    EXPECT_EQ(next.type, first.type);
    EXPECT_EQ(next.message, first.message);
    EXPECT_EQ(next.traceback, first.traceback);
  }
}

TEST(RemoteException, LocalExceptionsHaveNoRemoteTrace) {
  EXPECT_FALSE(cohort::remote_traceback(std::runtime_error("here")).has_value());
}

}  // namespace
