// A call waiting for a process pool's worker, bound to the future it completes.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "cohort/codec.hpp"
#include "cohort/detail/block_pool.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/detail/remote_call.hpp"

namespace cohort::detail {

/// The call, encoded once when it is submitted, and how to complete it. Every virtual call but start()'s
/// true answer consumes the job: the pool must not touch it afterwards.
class PoolJob {
 public:
  PoolJob(const PoolJob&) = delete;
  PoolJob& operator=(const PoolJob&) = delete;

  /// The CallFrame as cereal bytes: what a PoolTask carries after its id.
  virtual std::string_view call() const noexcept { return call_; }
  /// Lets go of the encoded call the job owns once the task has run (a future may be kept long after),
  /// returning its buffer for the pool to reuse.
  std::string take_call() noexcept { return std::exchange(call_, {}); }

  /// pending -> running as the job goes to a worker. False (and consumed) if it was cancelled.
  virtual bool start() noexcept = 0;
  /// The worker returned `result` (a codec frame; empty for void).
  virtual void succeed(std::string_view result) noexcept = 0;
  virtual void fail(std::exception_ptr error) noexcept = 0;
  /// The worker process died while it ran the job (`error` says how): a failure, unless the job can go
  /// elsewhere (a Redis worker's task is retried).
  virtual void lose(std::exception_ptr error) noexcept { fail(std::move(error)); }
  /// Ends the job as cancelled: not started yet, or abandoned by a terminated pool.
  virtual void cancel() noexcept = 0;

  /// Set by the pool: the id of the task on the wire, and whether the job was handed to a worker once
  /// already (start() must not be asked again when it is requeued).
  std::uint64_t id = 0;
  bool started = false;

 protected:
  /// `call`: the encoded call, or nothing for a job whose call() returns bytes it keeps elsewhere.
  explicit PoolJob(std::string call) noexcept : call_(std::move(call)) {}
  ~PoolJob() = default;

 private:
  std::string call_;
};

/// `frame` as cereal encodes it, in a string of exactly that size: no slack for a million queued calls,
/// and no regrowth that copies a large argument again and again.
inline std::string encode_frame(const CallFrame& frame) {
  std::string call;
  call.reserve(49 + frame.name.size() + frame.entry.module.size() + frame.target.module.size() +
               frame.arguments.size());
  BinaryWriter archive(call);
  archive(frame);
  return call;
}

/// What runs before a task's future completes (Python's Pool runs its callbacks before the result is
/// ready): nothing, for ProcessPoolExecutor.
struct NoHooks {
  template <class R>
  void before_value(const R&) noexcept {}
  void before_value() noexcept {}
  void before_error(const std::exception_ptr&) noexcept {}
};

/// Calls a callback the way a done-callback is called: an exception it throws is reported, not passed on.
template <class F, class... Args>
void run_callback(F& callback, Args&&... args) noexcept {
  try {
    callback(std::forward<Args>(args)...);
  } catch (...) {
    report_callback_error(std::current_exception());
  }
}

/// on_result(value) / on_error(exception); either may be std::nullptr_t (no callback).
template <class OnResult, class OnError>
struct CallbackHooks {
  OnResult on_result;
  OnError on_error;

  template <class... Value>
  void before_value(const Value&... value) noexcept {
    if constexpr (!std::is_null_pointer_v<OnResult>) run_callback(on_result, value...);
  }
  void before_error(const std::exception_ptr& error) noexcept {
    if constexpr (!std::is_null_pointer_v<OnError>) run_callback(on_error, error);
  }
};

/// A pool job and the state of its Future in one allocation; the pool's reference is `self_`.
template <class R, class Hooks = NoHooks>
class RemoteTask final : public FutureState<R>, public PoolJob {
 public:
  RemoteTask(std::string call, Hooks hooks) noexcept : PoolJob(std::move(call)), hooks_(std::move(hooks)) {}

  /// `call`: a CallFrame as cereal encodes it (encode_frame, encode_call).
  static std::shared_ptr<RemoteTask> make(std::string call, Hooks hooks = {}) {
    auto state = std::allocate_shared<RemoteTask>(PoolAllocator<RemoteTask>{}, std::move(call), std::move(hooks));
    state->self_ = state;
    return state;
  }

  bool start() noexcept override {
    if (this->set_running_or_notify_cancel()) return true;
    self_.reset();
    return false;
  }
  void succeed(std::string_view result) noexcept override {
    const auto keep = std::move(self_);
    try {
      if constexpr (std::is_void_v<R>) {
        if (!result.empty()) throw SerializationError("a pool task returned a value where none was expected");
        hooks_.before_value();
        this->try_set_value();
      } else {
        auto value = loads<R>(result);
        hooks_.before_value(value);
        this->set_value(std::move(value));
      }
    } catch (...) {
      finish_with(std::current_exception());
    }
  }
  void fail(std::exception_ptr error) noexcept override {
    const auto keep = std::move(self_);
    finish_with(std::move(error));
  }
  void cancel() noexcept override {
    const auto keep = std::move(self_);
    this->mark_cancelled();
  }

 private:
  void finish_with(std::exception_ptr error) noexcept {
    hooks_.before_error(error);
    this->try_set_exception(std::move(error));
  }

  [[no_unique_address]] Hooks hooks_;
  std::shared_ptr<RemoteTask> self_;
};

/// Maps `function` over a chunk of inputs in a worker: how Pool.map and Executor.map send many tiny
/// tasks as one.
template <class F, class Input>
auto map_chunk(const RemoteFunction<F>& function, const std::vector<Input>& inputs) {
  using R = std::remove_cvref_t<std::invoke_result_t<const F&, const Input&>>;
  std::vector<R> results;
  results.reserve(inputs.size());
  for (const auto& input : inputs) results.push_back(std::invoke(function.function, input));
  return results;
}

/// Same for starmap: each input is a tuple of arguments.
template <class F, class Tuple>
auto starmap_chunk(const RemoteFunction<F>& function, const std::vector<Tuple>& inputs) {
  using R = std::remove_cvref_t<decltype(std::apply(function.function, inputs.front()))>;
  std::vector<R> results;
  results.reserve(inputs.size());
  for (const auto& input : inputs) results.push_back(std::apply(function.function, input));
  return results;
}

}  // namespace cohort::detail
