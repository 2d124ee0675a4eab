#include "cohort/detail/remote_call.hpp"

#include <link.h>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "cohort/codec.hpp"
#include "cohort/error.hpp"

namespace {

namespace detail = cohort::detail;

long scale(long x, double factor) { return static_cast<long>(static_cast<double>(x) * factor); }
COHORT_REMOTE(scale);

int unnamed(int x) { return x + 1; }

TEST(RemoteCall, ANamedFunctionTravelsByNameWithItsParameterTypes) {
  const auto frame = detail::make_call(&scale, 10, 2.5f);  // int and float at the call site
  EXPECT_EQ(frame.name, "scale");
  // As a worker of another build receives it: the addresses mean nothing there, the name does.
  auto elsewhere = cohort::loads<detail::CallFrame>(cohort::dumps(frame));
  elsewhere.entry = detail::FunctionAddress{"/no/such/module.so", 1};
  elsewhere.target = detail::FunctionAddress{"/no/such/module.so", 2};
  std::string result;
  detail::invoke(elsewhere, &result);
  EXPECT_EQ(cohort::loads<long>(result), 25);
}

TEST(RemoteCall, UnnamedFunctionsTravelByAddress) {
  const auto frame = detail::make_call(&unnamed, 41);
  EXPECT_TRUE(frame.name.empty());
  std::string result;
  detail::invoke(frame, &result);
  EXPECT_EQ(cohort::loads<int>(result), 42);
}

TEST(RemoteCall, AFunctionOfTheExecutableIsAnOffsetInIt) {
  const void* function = reinterpret_cast<const void*>(&unnamed);
  const auto address = detail::address_of(function);
  EXPECT_TRUE(address.module.empty()) << address.module;
  EXPECT_EQ(detail::resolve(address), function);
  EXPECT_EQ(detail::resolve(cohort::loads<detail::FunctionAddress>(cohort::dumps(address))), function);
}

TEST(RemoteCall, AFunctionOfASharedLibraryIsAnOffsetInThatLibrary) {
  const void* function = reinterpret_cast<const void*>(&::dl_iterate_phdr);  // in the C library
  const auto address = detail::address_of(function);
  EXPECT_NE(address.module.find("libc"), std::string::npos) << address.module;
  EXPECT_EQ(detail::resolve(address), function);
}

TEST(RemoteCall, AnOffsetOutsideTheExecutablesCodeIsRefused) {
  static const int not_code = 0;  // read-only data, not code
  auto address = detail::address_of(&not_code);
  EXPECT_TRUE(address.module.empty());
  EXPECT_THROW(detail::resolve(address), cohort::SerializationError);
  address.offset = ~std::uint64_t{0} >> 1;  // far past the end of every segment
  EXPECT_THROW(detail::resolve(address), cohort::SerializationError);
}

TEST(RemoteCall, AnUnknownNameIsAClearError) {
  auto frame = detail::make_call(&unnamed, 1);
  frame.name = "not_registered_anywhere";
  try {
    detail::invoke(frame, nullptr);
    FAIL() << "an unknown name was accepted";
  } catch (const cohort::SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("not_registered_anywhere"), std::string::npos) << e.what();
  }
}

TEST(RemoteCall, OneNameForTwoFunctionsIsRefused) {
  EXPECT_THROW(detail::register_remote("scale", &unnamed), std::logic_error);
  EXPECT_TRUE(detail::register_remote("scale", &scale));  // the same function again is harmless
}

}  // namespace
