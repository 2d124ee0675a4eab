// get_context (Python: multiprocessing.get_context): objects bound to one start method, whatever the
// program's default is.
#pragma once

#include <cstddef>
#include <optional>
#include <utility>

#include "cohort/process.hpp"
#include "cohort/queue.hpp"

namespace cohort {

class Pool;

class Context {
 public:
  explicit Context(StartMethod method) noexcept : method_(method) {}

  StartMethod start_method() const noexcept { return method_; }

  /// Process(target, args...) started with this context's method.
  template <class F, class... Args>
  Process process(F&& target, Args&&... args) const {
    return process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...);
  }
  /// The same with options; the context's start method replaces theirs.
  template <class F, class... Args>
  Process process(ProcessOptions options, F&& target, Args&&... args) const {
    options.start_method = method_;
    return Process(std::move(options), std::forward<F>(target), std::forward<Args>(args)...);
  }

  /// Queue<T>(maxsize). Queues work with every start method; this is here so that code written against
  /// a context reads as Python's `ctx.Queue()`.
  template <class T>
  Queue<T> queue(std::size_t maxsize = 0) const {
    return Queue<T>(maxsize);
  }

  /// Pool(processes) whose workers start with this context's method (Python: `ctx.Pool(n)`); include
  /// cohort/pool.hpp to use it. 0: cpu_count() workers.
  template <class P = Pool>
  P pool(std::size_t processes = 0) const {
    return P(typename P::Options{.processes = processes, .start_method = method_});
  }

 private:
  StartMethod method_;
};

/// A context for `method`; without one, for the current default (get_start_method()).
inline Context get_context(std::optional<StartMethod> method = std::nullopt) {
  return Context(method.value_or(get_start_method()));
}

}  // namespace cohort
