// get_context (Python: multiprocessing.get_context): objects bound to one start method, whatever the
// program's default is.
#pragma once

#include <optional>
#include <utility>

#include "cohort/process.hpp"

namespace cohort {

class Context {
 public:
  explicit Context(StartMethod method) noexcept : method_(method) {}

  StartMethod start_method() const noexcept { return method_; }

  /// Process(target, args...) started with this context's method.
  template <class F, class... Args>
  Process process(F&& target, Args&&... args) const {
    return process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...);
  }
  /// The same with options; their start_method, if set, must agree with the context.
  template <class F, class... Args>
  Process process(ProcessOptions options, F&& target, Args&&... args) const {
    options.start_method = method_;
    return Process(std::move(options), std::forward<F>(target), std::forward<Args>(args)...);
  }

 private:
  StartMethod method_;
};

/// A context for `method`; without one, for the current default (get_start_method()).
inline Context get_context(std::optional<StartMethod> method = std::nullopt) {
  return Context(method.value_or(get_start_method()));
}

}  // namespace cohort
