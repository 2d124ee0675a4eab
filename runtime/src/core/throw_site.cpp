// Throw sites: cxa_throw.cpp's __cxa_throw calls note_throw() for every throw. Once the process records
// throw sites, the stack trace of each thrown object is kept until the object is destroyed (the throw is
// given a destructor that forgets it first), so a later exception at the same address is never taken for
// an earlier one.
#include "cohort/detail/throw_site.hpp"

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <utility>

#include <boost/stacktrace.hpp>

namespace cohort::detail {

using Destroy = void (*)(void*);

namespace {

struct Thrown {
  boost::stacktrace::stacktrace trace;
  Destroy destroy;
};

struct ThrowSites {
  std::mutex mutex;
  std::unordered_map<const void*, Thrown> live;
};

std::atomic<bool> recording{false};
thread_local bool noting = false;  // a throw while one is noted (out of memory) is not noted

ThrowSites& sites() {
  static auto* all = new ThrowSites;  // never destroyed: exceptions may outlive static destruction
  return *all;
}

void forget_then_destroy(void* object) {
  Destroy destroy = nullptr;
  {
    auto& s = sites();
    std::lock_guard lock(s.mutex);
    if (const auto it = s.live.find(object); it != s.live.end()) {
      destroy = it->second.destroy;
      s.live.erase(it);
    }
  }
  if (destroy) destroy(object);
}

}  // namespace

bool throw_hook_linked() noexcept;  // cxa_throw.cpp: referring to it links that file in

void record_throw_sites() noexcept {
  if (throw_hook_linked()) recording.store(true, std::memory_order_relaxed);
}

std::optional<std::string> throw_site_of(const void* object) {
  auto& s = sites();
  std::lock_guard lock(s.mutex);
  const auto it = s.live.find(object);
  if (it == s.live.end()) return std::nullopt;
  return boost::stacktrace::to_string(it->second.trace);
}

/// Called by __cxa_throw only: returns the destructor to throw `object` with.
[[gnu::noinline]] Destroy note_throw(void* object, Destroy destroy) noexcept {
  if (!recording.load(std::memory_order_relaxed) || noting) return destroy;
  noting = true;
  try {
    Thrown thrown{boost::stacktrace::stacktrace(2, 128), destroy};  // without this function and __cxa_throw
    auto& s = sites();
    std::lock_guard lock(s.mutex);
    s.live.insert_or_assign(object, std::move(thrown));
    destroy = &forget_then_destroy;
  } catch (...) {
    // Out of memory while throwing: the exception goes on without its trace.
  }
  noting = false;
  return destroy;
}

}  // namespace cohort::detail
