// Coroutine waits on future states: the wait operation parked in a state's callback list, and the
// combinators built on it (gather's await_all, wait_for's await_within).
#include "cohort/detail/async_wait.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <limits>
#include <mutex>
#include <optional>
#include <vector>

#include "cohort/error.hpp"
#include "cohort/gather.hpp"
#include "cohort/runtime.hpp"
#include "cohort/wait_for.hpp"

namespace cohort::detail {

namespace asio = boost::asio;

namespace {

/// The loop whose coroutines a completion on this thread may resume in place (InlineResumeScope).
thread_local asio::io_context* inline_resume_loop = nullptr;

class WaitOpBase {
 public:
  virtual ~WaitOpBase() = default;
  /// Drops the handler without calling it: its event loop is being destroyed.
  virtual void abandon() noexcept = 0;
  /// On the loop, once the future is done: finishes on the handler's executor.
  virtual void resume_ready() = 0;

  // While parked: the neighbours in the registry's list, and the reference that keeps this alive.
  WaitOpBase* previous = nullptr;
  WaitOpBase* next = nullptr;
  std::shared_ptr<WaitOpBase> parked_self;
  // While its future is done and the loop has not resumed it yet: the next in the ready queue.
  WaitOpBase* ready_next = nullptr;
  std::shared_ptr<WaitOpBase> ready_self;
};

/// Per io_context: the wait operations parked in future states. A future may complete after its
/// waiter's io_context is gone; shutting the context down abandons the parked operations so that a
/// late completion finds `alive == false` and touches nothing. The operations form an intrusive list:
/// parking one allocates nothing.
class WaitRegistry final : public asio::execution_context::service {
 public:
  struct Link {
    std::mutex mutex;  // guards everything here and the list pointers of the parked operations
    std::atomic<bool> alive{true};  // written under the mutex; link_of() reads it without
    WaitOpBase* parked = nullptr;

    void park(std::shared_ptr<WaitOpBase> op) {
      op->next = parked;
      if (parked) parked->previous = op.get();
      parked = op.get();
      op->parked_self = std::move(op);
    }
    // The operations whose future completed, oldest first, for the loop to resume. One posted drain
    // takes every operation that arrives until it runs: a burst of completions from pool threads costs
    // one post to the loop, not one each (each post takes the loop's queue lock from another thread).
    WaitOpBase* ready_first = nullptr;
    WaitOpBase* ready_last = nullptr;

    /// Queues `op`; true if the queue was empty, so that a drain must be posted.
    bool push_ready(WaitOpBase* op) noexcept {
      const bool was_empty = ready_first == nullptr;
      if (was_empty)
        ready_first = op;
      else
        ready_last->ready_next = op;
      ready_last = op;
      return was_empty;
    }
    WaitOpBase* take_ready() noexcept {
      auto* first = ready_first;
      ready_first = ready_last = nullptr;
      return first;
    }

    /// The parked reference of `op`, now unlinked; null if it was not parked.
    std::shared_ptr<WaitOpBase> unpark(WaitOpBase* op) noexcept {
      if (!op->parked_self) return nullptr;
      if (op->previous) op->previous->next = op->next;
      if (op->next) op->next->previous = op->previous;
      if (parked == op) parked = op->next;
      op->previous = op->next = nullptr;
      return std::move(op->parked_self);
    }
  };

  static inline asio::execution_context::id id;

  explicit WaitRegistry(asio::execution_context& context) : service(context), link_(std::make_shared<Link>()) {}

  const std::shared_ptr<Link>& link() const noexcept { return link_; }

  /// Resumes every queued ready operation: the handler of one drain posted by on_ready().
  static void drain(const std::shared_ptr<Link>& link) {
    WaitOpBase* op = nullptr;
    {
      std::lock_guard lock(link->mutex);
      op = link->take_ready();
    }
    while (op != nullptr) {
      auto* next = op->ready_next;
      op->ready_next = nullptr;
      const auto keep = std::move(op->ready_self);
      op->resume_ready();
      op = next;
    }
  }

 private:
  void shutdown() override {
    std::vector<std::shared_ptr<WaitOpBase>> dropped;
    {
      std::lock_guard lock(link_->mutex);
      link_->alive = false;
      while (link_->parked) dropped.push_back(link_->unpark(link_->parked));
      for (auto* op = link_->take_ready(); op != nullptr; op = op->ready_next) dropped.push_back(std::move(op->ready_self));
    }
    for (auto& op : dropped)
      if (op) op->abandon();
  }

  std::shared_ptr<Link> link_;
};

template <class Handler>
class WaitOp final : public WaitOpBase, public std::enable_shared_from_this<WaitOp<Handler>> {
 public:
  using WorkExecutor = std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler>>(),
                                                          asio::execution::outstanding_work.tracked))>;

  WaitOp(Handler handler, std::shared_ptr<FutureStateBase> state, std::shared_ptr<WaitRegistry::Link> link)
      : handler_(std::move(handler)),
        executor_(asio::prefer(asio::get_associated_executor(*handler_), asio::execution::outstanding_work.tracked)),
        state_(std::move(state)),
        link_(std::move(link)) {}

  void start(std::optional<Clock::time_point> deadline) {
    auto self = this->shared_from_this();
    {
      std::lock_guard lock(link_->mutex);
      if (!link_->alive) return;  // the loop is shutting down; dropping the handler ends the coroutine
      link_->park(self);
    }
    slot_ = asio::get_associated_cancellation_slot(*handler_);
    if (slot_.is_connected()) {
      slot_.assign([self](asio::cancellation_type) {
        // Emitted on the coroutine's executor; finishing is posted so the slot is never cleared from
        // inside its own handler.
        asio::post(*self->executor_, [self] { self->finish(wait_cancelled); });
      });
    }
    if (deadline) {
      timer_.emplace(*executor_, *deadline);
      timer_->async_wait([self](const boost::system::error_code& ec) {
        if (!ec) self->finish(wait_timed_out);
      });
    }
    callback_id_ = state_->on_done([self] { self->on_ready(); });
  }

  void abandon() noexcept override {
    finished_.store(true);
    timer_.reset();
    handler_.reset();
    executor_.reset();
    ready_executor_.reset();
  }

  void resume_ready() override {
    // Taken out: the thread that completed the future may drop the last reference to this operation
    // after its loop is gone, and must then find no executor here that still counts as the loop's work.
    auto executor = std::move(*ready_executor_);
    ready_executor_.reset();
    // Inline when the drain runs on this operation's executor (always, on a one-thread Runtime).
    asio::dispatch(executor, [self = this->shared_from_this()] { self->finish(wait_ready); });
  }

 private:
  /// Runs on the completing thread, which may be any thread.
  void on_ready() {
    if (inline_resume_loop != nullptr && resumable_here()) {
      // The mark is lifted while the coroutine runs: what it completes in turn goes through the loop,
      // so resumptions never nest.
      auto* const loop = std::exchange(inline_resume_loop, nullptr);
      finish(wait_ready);
      inline_resume_loop = loop;
      return;
    }
    std::lock_guard lock(link_->mutex);
    if (!link_->alive || !executor_) return;
    ready_executor_ = *executor_;  // finish() resets executor_ on the loop meanwhile
    ready_self = this->shared_from_this();
    if (link_->push_ready(this)) asio::post(*executor_, [link = link_] { WaitRegistry::drain(link); });
  }

  /// On a thread marked by InlineResumeScope: whether this operation's coroutine runs on the marked
  /// loop (whose single thread this is), so that finishing it here is finishing it on its executor.
  bool resumable_here() const {
    std::lock_guard lock(link_->mutex);
    return link_->alive && executor_ && &asio::query(*executor_, asio::execution::context) == inline_resume_loop;
  }

  /// Runs on the handler's executor.
  void finish(WaitResult result) {
    if (finished_.exchange(true)) return;
    std::optional<WorkExecutor> work;  // keeps the loop alive until the handler has run
    std::shared_ptr<WaitOpBase> parked;  // released after the lock, though the caller holds this too
    {
      // on_ready() reads the executor under this mutex from whichever thread completes the future.
      std::lock_guard lock(link_->mutex);
      if (!link_->alive) return;
      parked = link_->unpark(this);
      work = std::move(executor_);
      executor_.reset();
    }
    if (slot_.is_connected()) slot_.clear();
    // Destroyed here, on the loop: the last reference to this operation may be dropped later by the thread
    // that completes the future, after the loop and its timer service are gone.
    timer_.reset();
    if (result != wait_ready && callback_id_ != 0) state_->remove_callback(callback_id_);
    auto handler = std::move(*handler_);
    handler_.reset();
    std::move(handler)(static_cast<int>(result));
  }

  std::optional<Handler> handler_;
  std::optional<WorkExecutor> executor_;
  std::optional<WorkExecutor> ready_executor_;  // set once the future is done, for the drain
  std::shared_ptr<FutureStateBase> state_;
  std::shared_ptr<WaitRegistry::Link> link_;
  asio::cancellation_slot slot_;
  std::optional<asio::steady_timer> timer_;
  std::uint64_t callback_id_ = 0;
  std::atomic<bool> finished_{false};
};

/// The registry's link of `context`. use_service takes the context's service lock, so the last one this
/// thread used is kept; a context destroyed since (whose address a new one may reuse) left its link dead.
std::shared_ptr<WaitRegistry::Link> link_of(asio::execution_context& context) {
  thread_local asio::execution_context* last_context = nullptr;
  thread_local std::shared_ptr<WaitRegistry::Link> last_link;
  if (last_context != &context || !last_link || !last_link->alive.load(std::memory_order_acquire)) {
    last_link = asio::use_service<WaitRegistry>(context).link();
    last_context = &context;
  }
  return last_link;
}

}  // namespace

void start_direct_wait(DirectWaitHandler handler, std::shared_ptr<FutureStateBase> state) {
  auto link = link_of(asio::query(asio::get_associated_executor(handler), asio::execution::context));
  using Op = WaitOp<DirectWaitHandler>;
  std::make_shared<Op>(std::move(handler), std::move(state), std::move(link))->start(std::nullopt);
}

task<bool> async_wait_done(std::shared_ptr<FutureStateBase> state, std::optional<Clock::time_point> deadline) {
  if (state->done()) co_return true;
  const auto cancellation = co_await asio::this_coro::cancellation_state;
  if (cancellation.cancelled() != asio::cancellation_type::none) throw CancelledError("cancelled while awaiting a future");
  const auto executor = co_await asio::this_coro::executor;
  auto link = link_of(asio::query(executor, asio::execution::context));
  const int result = co_await asio::async_initiate<decltype(asio::use_awaitable), void(int)>(
      [&](auto handler) {
        using Op = WaitOp<std::decay_t<decltype(handler)>>;
        std::make_shared<Op>(std::move(handler), state, link)->start(deadline);
      },
      asio::use_awaitable);
  if (result == wait_cancelled) throw CancelledError("cancelled while awaiting a future");
  co_return result == wait_ready;
}

task<void> await_all(std::vector<std::shared_ptr<FutureStateBase>> states,
                     std::vector<std::shared_ptr<TaskControl>> controls) {
  if (states.empty()) co_return;
  constexpr auto none_failed = std::numeric_limits<std::size_t>::max();
  struct Join {
    explicit Join(std::size_t count) : remaining(count) {}
    std::atomic<std::size_t> remaining;
    std::atomic<std::size_t> first_failed{none_failed};
    std::shared_ptr<FutureState<void>> settled = std::make_shared<FutureState<void>>();
  };
  auto join = std::make_shared<Join>(states.size());
  for (std::size_t i = 0; i < states.size(); ++i) {
    states[i]->on_done([join, i, state = states[i].get()] {
      if (state->failed()) {
        auto expected = none_failed;
        if (join->first_failed.compare_exchange_strong(expected, i)) join->settled->try_set_value();
      }
      if (join->remaining.fetch_sub(1) == 1) join->settled->try_set_value();
    });
  }
  auto cancel_all = [&controls] {
    for (const auto& control : controls) request_cancel(control);
  };
  try {
    co_await async_wait_done(join->settled);
  } catch (...) {
    cancel_all();
    throw;
  }
  const auto failed = join->first_failed.load();
  if (failed != none_failed) {
    cancel_all();
    states[failed]->rethrow_if_failed();
  }
}

InlineResumeScope::InlineResumeScope(asio::io_context& loop) noexcept : previous_(inline_resume_loop) {
  inline_resume_loop = runs_on_one_thread(loop) ? &loop : nullptr;
}

InlineResumeScope::~InlineResumeScope() { inline_resume_loop = previous_; }

GatherJoin::GatherJoin(const Executor& executor, std::size_t count)
    : signals_(std::make_unique<asio::cancellation_signal[]>(count)),
      count_(count),
      remaining_(count),
      settled_(std::make_shared<FutureState<void>>()) {
  bool shared = false;
  executor_ = task_executor(executor, shared);
  if (shared) return;
  strands_ = std::make_unique<Executor[]>(count);
  strands_[0] = executor_;
  for (std::size_t i = 1; i < count; ++i) strands_[i] = task_executor(executor, shared);
}

GatherJoin::~GatherJoin() = default;

void GatherJoin::child_done(std::exception_ptr error) noexcept {
  if (error && !failed_.exchange(true, std::memory_order_acq_rel)) {
    first_error_ = std::move(error);
    settled_->try_set_value();
  }
  if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) settled_->try_set_value();
}

void GatherJoin::cancel_children() {
  stopping_.store(true, std::memory_order_release);
  auto self = shared_from_this();
  if (shared_executor()) {
    asio::post(executor_, [self] {
      for (std::size_t i = 0; i < self->count_; ++i) self->signals_[i].emit(asio::cancellation_type::terminal);
    });
    return;
  }
  for (std::size_t i = 0; i < count_; ++i)
    asio::post(strands_[i], [self, i] { self->signals_[i].emit(asio::cancellation_type::terminal); });
}

task<void> await_children(std::shared_ptr<GatherJoin> join) {
  try {
    co_await async_wait_done(join->settled_);
  } catch (...) {
    join->cancel_children();
    throw;
  }
  if (!join->failed_.load(std::memory_order_acquire)) co_return;
  join->cancel_children();
  try {
    std::rethrow_exception(join->first_error_);
  } catch (const boost::system::system_error& e) {
    // A child cancelled inside an Asio operation: reported as a cancelled task is.
    if (e.code() == asio::error::operation_aborted) throw CancelledError("gather: a task was cancelled");
    throw;
  }
}

task<void> await_within(std::shared_ptr<FutureStateBase> state, std::shared_ptr<TaskControl> control,
                        Clock::duration timeout) {
  bool done = false;
  try {
    done = co_await async_wait_done(state, Clock::now() + timeout);
  } catch (...) {
    request_cancel(control);
    throw;
  }
  if (done) co_return;
  // As Python's wait_for: the task is cancelled and waited for, so that nothing it does outlives the
  // call, and a task that finished in the same instant (an item it already took off a queue, say) keeps
  // its result instead of losing it to the timeout.
  request_cancel(control);
  co_await async_wait_done(state);
  try {
    state->rethrow_if_failed();
  } catch (const CancelledError&) {
    throw_timeout("wait_for", timeout);
  }
}

}  // namespace cohort::detail
