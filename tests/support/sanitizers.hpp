// What the sanitizer builds cannot follow, for the tests to skip there.
#pragma once

#include <gtest/gtest.h>

#include "cohort/process.hpp"

/// Skips the test under ThreadSanitizer with the fork start method. A child forked from a process with
/// several threads that then starts threads of its own (a process actor's worker; a child that calls
/// a manager through proxies, on a loop thread) is refused by GCC 12's ThreadSanitizer ("starting new
/// threads after multi-threaded fork is not supported"), which can also hang in its allocator there.
/// glibc allows it; spawn and forkserver, which these tests run under as well, start from one thread.
#if defined(__SANITIZE_THREAD__)
#define COHORT_SKIP_THREADED_FORK_UNDER_TSAN()                                                                \
  do {                                                                                                     \
    if (cohort::get_start_method() == cohort::StartMethod::fork)                                           \
      GTEST_SKIP() << "ThreadSanitizer cannot follow a child forked from several threads that starts threads"; \
  } while (false)
#else
#define COHORT_SKIP_THREADED_FORK_UNDER_TSAN() \
  do {                                         \
  } while (false)
#endif
