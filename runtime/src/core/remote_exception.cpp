// Exceptions across processes: describing one where it was caught, and throwing it again where the
// call came from, as its own type when that type is known here.
#include "cohort/remote_exception.hpp"

#include <cxxabi.h>

#include <boost/core/demangle.hpp>
#include <boost/stacktrace.hpp>

#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>

#include "cohort/detail/remote_failure.hpp"
#include "cohort/detail/throw_site.hpp"
#include "cohort/error.hpp"

namespace cohort {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, detail::ExceptionFactory, std::less<>> factories;
};

std::string name_of(const std::type_info& type) { return boost::core::demangle(type.name()); }

template <class E>
void add(Registry& registry) {
  registry.factories.emplace(name_of(typeid(E)), &detail::make_remote_exception<E>);
}

Registry& registry() {
  static Registry* instance = [] {
    auto* r = new Registry;  // never destroyed: workers may rethrow while statics are torn down
    add<std::logic_error>(*r);
    add<std::invalid_argument>(*r);
    add<std::domain_error>(*r);
    add<std::length_error>(*r);
    add<std::out_of_range>(*r);
    add<std::runtime_error>(*r);
    add<std::range_error>(*r);
    add<std::overflow_error>(*r);
    add<std::underflow_error>(*r);
    add<Error>(*r);
    add<TimeoutError>(*r);
    add<CancelledError>(*r);
    add<InvalidStateError>(*r);
    add<BrokenPromise>(*r);
    add<BrokenExecutor>(*r);
    add<BrokenThreadPool>(*r);
    add<BrokenProcessPool>(*r);
    add<ProcessError>(*r);
    add<EOFError>(*r);
    add<Empty>(*r);
    add<Full>(*r);
    add<BrokenBarrierError>(*r);
    add<AuthenticationError>(*r);
    add<SerializationError>(*r);
    add<ActorDeadError>(*r);
    add<DeadlockError>(*r);
    return r;
  }();
  return *instance;
}

/// The type of the exception being handled, for one that is not a std::exception.
std::string current_exception_type_name() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  return type ? name_of(*type) : std::string("unknown exception");
}

}  // namespace

std::optional<std::string> remote_traceback(const std::exception& error) {
  if (const auto* remote = dynamic_cast<const RemoteError*>(&error)) return remote->traceback();
  if (const auto* remote = dynamic_cast<const RemoteTraceback*>(&error)) return remote->traceback();
  return std::nullopt;
}

namespace detail {

void register_exception_factory(const std::type_info& type, ExceptionFactory make) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.factories.insert_or_assign(name_of(type), make);
}

RemoteFailure describe_failure(const std::exception_ptr& error) {
  RemoteFailure failure;
  std::optional<std::string> thrown_at;
  try {
    std::rethrow_exception(error);
  } catch (const RemoteError& e) {
    // Passed on from a process further away: its origin is what matters.
    return RemoteFailure{e.remote_type(), e.what(), e.traceback()};
  } catch (const std::exception& e) {
    if (const auto* remote = dynamic_cast<const RemoteTraceback*>(&e))
      return RemoteFailure{remote->remote_type(), e.what(), remote->traceback()};
    failure.type = name_of(typeid(e));
    failure.message = e.what();
    thrown_at = throw_site_of(dynamic_cast<const void*>(&e));
  } catch (...) {
    failure.type = current_exception_type_name();
    failure.message = "an exception of type " + failure.type;
  }
  // Where it was thrown if this process records throw sites, else where it is described.
  failure.traceback = thrown_at ? std::move(*thrown_at) : boost::stacktrace::to_string(boost::stacktrace::stacktrace());
  return failure;
}

void rethrow_failure(const RemoteFailure& failure) {
  ExceptionFactory make = nullptr;
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    if (const auto it = r.factories.find(failure.type); it != r.factories.end()) make = it->second;
  }
  if (make) std::rethrow_exception(make(failure.type, failure.message, failure.traceback));
  throw RemoteError(failure.type, failure.message, failure.traceback);
}

}  // namespace detail

}  // namespace cohort
