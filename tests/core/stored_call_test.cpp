#include "cohort/detail/stored_call.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace {

using cohort::detail::invoke_stored;
using cohort::detail::stored_call;

int take_unique(std::unique_ptr<int> p) { return *p; }
int take_const_ref(const std::string& s) { return static_cast<int>(s.size()); }
int take_rvalue(std::vector<int>&& v) { return static_cast<int>(v.size()); }
void append_to(std::vector<int>& v, int x) { v.push_back(x); }
int mixed(std::unique_ptr<int> p, std::vector<int>& out) {
  out.push_back(*p);
  return *p;
}

static_assert(stored_call<decltype(&take_unique), std::unique_ptr<int>>::callable);
static_assert(stored_call<decltype(&take_const_ref), std::string>::callable);
static_assert(stored_call<decltype(&take_rvalue), std::vector<int>>::callable);
static_assert(stored_call<decltype(&append_to), std::vector<int>, int>::callable);
static_assert(stored_call<decltype(&mixed), std::unique_ptr<int>, std::vector<int>>::callable);
// Must-not-compile cases, paired with the ones above: wrong arity, wrong type, a T& that the stored type
// does not bind to.
static_assert(!stored_call<decltype(&take_unique)>::callable);
static_assert(!stored_call<decltype(&take_const_ref), int>::callable);
static_assert(!stored_call<decltype(&append_to), const char*, int>::callable);

TEST(StoredCall, AMoveOnlyArgumentTakenByValueIsMovedIn) {
  std::unique_ptr<int> p = std::make_unique<int>(7);
  auto fn = &take_unique;
  EXPECT_EQ(invoke_stored(fn, p), 7);
  EXPECT_EQ(p, nullptr);
}

TEST(StoredCall, ATReferenceParameterGetsTheStoredObject) {
  std::vector<int> v;
  int x = 3;
  auto fn = &append_to;
  invoke_stored(fn, v, x);
  EXPECT_EQ(v, std::vector<int>{3});
}

TEST(StoredCall, MixedParametersEachGetWhatTheyBindTo) {
  std::tuple<std::unique_ptr<int>, std::vector<int>> stored{std::make_unique<int>(5), std::vector<int>{}};
  auto fn = &mixed;
  EXPECT_EQ(invoke_stored(fn, stored), 5);
  EXPECT_EQ(std::get<1>(stored), std::vector<int>{5});
  EXPECT_EQ(std::get<0>(stored), nullptr);
}

TEST(StoredCall, LambdasWithDeclaredAndGenericParameters) {
  auto by_value = [](std::unique_ptr<int> p) { return *p + 1; };
  std::unique_ptr<int> p = std::make_unique<int>(1);
  EXPECT_EQ(invoke_stored(by_value, p), 2);

  auto mutating = [](std::string& s) mutable { s += "!"; };
  std::string s = "hi";
  invoke_stored(mutating, s);
  EXPECT_EQ(s, "hi!");

  auto generic_value = [](auto q) { return *q; };
  std::unique_ptr<int> q = std::make_unique<int>(4);
  EXPECT_EQ(invoke_stored(generic_value, q), 4);
  EXPECT_EQ(q, nullptr);

  auto generic_ref = [](auto& text) { text += "?"; };
  std::string t = "ok";
  invoke_stored(generic_ref, t);
  EXPECT_EQ(t, "ok?");
}

TEST(StoredCall, ConstCallOperatorAndNoexcept) {
  struct Functor {
    int operator()(const std::string& s) const noexcept { return static_cast<int>(s.size()); }
  };
  Functor f;
  std::string s = "abc";
  EXPECT_EQ(invoke_stored(f, s), 3);
  EXPECT_EQ(s, "abc");
}

}  // namespace
