// Where an exception was thrown, for the stack trace a RemoteError carries back from a worker: by the
// time the worker catches the exception, the frames that threw it are gone.
#pragma once

#include <optional>
#include <string>

namespace cohort::detail {

/// From now on, every thread of this process keeps the stack trace of the last exception it throws
/// (pool workers do: a throw then costs the capture of a stack trace).
void record_throw_sites() noexcept;

/// The stack trace of where `object` was thrown, if it is the last exception thrown on this thread while
/// throw sites were recorded. `object`: the thrown object itself, as dynamic_cast<const void*> gives it
/// for a reference to any of its bases.
std::optional<std::string> throw_site_of(const void* object);

}  // namespace cohort::detail
