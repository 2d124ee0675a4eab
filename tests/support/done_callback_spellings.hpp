// Future::add_done_callback as users spell it, shared by the tests of every kind of future (Promise,
// thread pool, process pools): the natural spelling of Python's `lambda fut: ...` is a generic lambda.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "cohort/future.hpp"

namespace cohort_test {

/// Registers the same check in every spelling of a done-callback and returns how many of them ran
/// within five seconds: 6 when all did.
template <class T>
int run_every_callback_spelling(const cohort::Future<T>& future) {
  auto ran = std::make_shared<std::atomic<int>>(0);
  const auto check = [ran](const cohort::Future<T>& done) {
    if (done.done()) ++*ran;
  };
  future.add_done_callback([=](auto& done) { check(done); });
  future.add_done_callback([=](const auto& done) { check(done); });
  future.add_done_callback([=](auto done) { check(done); });
  future.add_done_callback([=](const cohort::Future<T>& done) { check(done); });
  future.add_done_callback([=](cohort::Future<T> done) { check(done); });
  future.add_done_callback([ran] { ++*ran; });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ran->load() < 6 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return ran->load();
}

}  // namespace cohort_test
