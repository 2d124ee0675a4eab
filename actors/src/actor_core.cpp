// The mailbox and life of an actor, the registry of actors per event loop (which stops them when
// their Runtime is destroyed) and the registry of names (find_actor).
#include "cohort/detail/actor_core.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <fmt/format.h>

#include <atomic>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cohort/detail/actor_executor.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"
#include "cohort/runtime.hpp"

namespace cohort::detail {

namespace asio = boost::asio;

/// The actors of one event loop, so that destroying the loop stops them. The actors hold the registry
/// itself, not the service: an actor may outlive its loop.
struct LoopActors {
  std::mutex mutex;
  bool loop_alive = true;
  std::uint64_t next_id = 0;
  // Held here until they stop, as Erlang's processes and Pykka's actors live until stopped, whether
  // or not anybody holds a ref.
  std::unordered_map<std::uint64_t, std::shared_ptr<ActorCore>> actors;
};

namespace {

/// How many messages one drain handles before it lets the loop run other handlers.
constexpr int messages_per_drain = 64;

/// Names registered for find_actor, for every loop of the process.
struct ActorNames {
  std::mutex mutex;
  std::unordered_map<std::string, std::weak_ptr<ActorCore>> actors;
};

ActorNames& actor_names() {
  static auto* names = new ActorNames;  // never destroyed: actors may stop during static destruction
  return *names;
}

}  // namespace

/// The io_context service behind LoopActors: its shutdown, the first step of the loop's destruction,
/// stops every actor of the loop while their objects can still run on_stop.
class ActorSystem final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;

  explicit ActorSystem(asio::execution_context& context)
      : service(context), actors_(std::make_shared<LoopActors>()) {}

  const std::shared_ptr<LoopActors>& actors() const noexcept { return actors_; }

 private:
  void shutdown() override {
    std::unordered_map<std::uint64_t, std::shared_ptr<ActorCore>> live;
    {
      std::lock_guard lock(actors_->mutex);
      actors_->loop_alive = false;
      live.swap(actors_->actors);
    }
    for (auto& [id, actor] : live) actor->shutdown_with_loop();
  }

  std::shared_ptr<LoopActors> actors_;
};

std::string describe_error(const std::exception_ptr& error) noexcept {
  try {
    const auto failure = describe_failure(error);
    return failure.type + ": " + failure.message;
  } catch (...) {
    return "an error";
  }
}

std::exception_ptr destroyed_mid_method_error(const ActorCore& actor) {
  return std::make_exception_ptr(
      ActorDeadError("actor '" + actor.name() + "': its Runtime was destroyed before the method finished"));
}

void log_unobserved_failure(const std::string& actor, std::exception_ptr error) noexcept {
  try {
    log_warning(fmt::format("actor '{}': a method nobody awaits failed with {}", actor, describe_error(error)));
  } catch (...) {
    log_warning("actor: a method nobody awaits failed");
  }
}

ActorCore::ActorCore(asio::io_context& loop, std::string name, std::type_index type, std::size_t mailbox_size,
                     bool named)
    : loop_(&loop),
      name_(std::move(name)),
      type_(type),
      mailbox_size_(mailbox_size),
      named_(named),
      stopped_(std::make_shared<FutureState<void>>()) {}

ActorCore::~ActorCore() {
  for (auto* list : {pending_, head_}) {
    for (auto* message = list; message != nullptr;) {
      auto* next = message->next;
      message->fail(dead_error());
      delete message;
      message = next;
    }
  }
}

bool ActorCore::alive() const noexcept {
  std::lock_guard lock(mutex_);
  return accepting_;
}

void ActorCore::start(std::unique_ptr<ActorMessage> first) {
  if (named_) {
    auto& names = actor_names();
    std::lock_guard lock(names.mutex);
    auto& entry = names.actors[name_];
    if (const auto running = entry.lock(); running && running->alive())
      throw std::invalid_argument("spawn_actor: an actor named '" + name_ + "' is already running");
    entry = weak_from_this();
  }
  loop_actors_ = asio::use_service<ActorSystem>(*loop_).actors();
  {
    std::lock_guard lock(loop_actors_->mutex);
    registration_ = ++loop_actors_->next_id;
    loop_actors_->actors.emplace(registration_, shared_from_this());
  }
  std::lock_guard lock(mutex_);
  accepting_ = true;
  if (first) {
    start_message_ = first.get();
    head_ = tail_ = first.release();
    schedule_locked();
  }
}

SendRefusal ActorCore::try_send(std::unique_ptr<ActorMessage>& message) {
  // A process actor's ref forwards without running user code: an idle one, sent to from its own loop,
  // puts the request into the pipe before the sender goes on.
  return try_send(message, forwards_);
}

SendRefusal ActorCore::try_send(std::unique_ptr<ActorMessage>& message, bool handle_if_idle) {
  {
    std::lock_guard lock(mutex_);
    if (!accepting_) return SendRefusal::dead;
    if (mailbox_size_ != 0 && queued_.load(std::memory_order_relaxed) >= mailbox_size_) return SendRefusal::full;
    // Idle: no drain is posted or running (nor a coroutine method), so nothing is queued before this
    // message and running the drain here, on a thread of the actor's loop, is what the posted one
    // would do, a round through the loop's queue (and its epoll_wait) sooner.
    handle_if_idle = handle_if_idle && !scheduled_ && head_ == nullptr && !loop_gone_ &&
                     (forwards_from_any_thread_ || loop_->get_executor().running_in_this_thread());
    if (!handle_if_idle) {
      append_locked(message.release());
      return SendRefusal::none;
    }
    head_ = tail_ = message.release();
    queued_.fetch_add(1, std::memory_order_relaxed);
    scheduled_ = true;
  }
  drain();
  return SendRefusal::none;
}

void ActorCore::send_and_handle(std::unique_ptr<ActorMessage> message) {
  switch (try_send(message, true)) {
    case SendRefusal::none:
      return;
    case SendRefusal::full:
      throw_full();
    case SendRefusal::dead:
      throw_dead();
  }
}

void ActorCore::append_locked(ActorMessage* message) {
  if (tail_ != nullptr)
    tail_->next = message;
  else
    head_ = message;
  tail_ = message;
  queued_.fetch_add(1, std::memory_order_relaxed);
  if (!scheduled_) schedule_locked();
}

void ActorCore::send(std::unique_ptr<ActorMessage> message) {
  switch (try_send(message)) {
    case SendRefusal::none:
      return;
    case SendRefusal::full:
      throw_full();
    case SendRefusal::dead:
      throw_dead();
  }
}

task<void> ActorCore::send_when_room(std::unique_ptr<ActorMessage> message) {
  for (;;) {
    auto room = std::make_shared<FutureState<void>>();
    {
      std::lock_guard lock(mutex_);
      if (!accepting_) throw_dead_locked();
      // The flag first, then the count: the drain lowers the count, then reads the flag, so one of the
      // two sees the other (both sequentially consistent) and no wake-up is lost.
      senders_waiting_.store(true);
      if (mailbox_size_ == 0 || queued_.load() < mailbox_size_) {
        append_locked(message.release());
        break;
      }
      room_waiters_.push_back(room);
    }
    try {
      co_await async_wait_done(room);
    } catch (...) {
      // Cancelled: a wake-up that comes later finds the state cancelled and passes to the next sender.
      room->cancel();
      throw;
    }
    // Woken: there was room; a tell may have taken it first, and then this waits again.
  }
}

void ActorCore::request_stop() {
  RoomWaiters waiters;
  {
    std::lock_guard lock(mutex_);
    if (!accepting_) return;
    accepting_ = false;
    stop_queued_ = true;
    if (!scheduled_) schedule_locked();
    waiters.swap(room_waiters_);
  }
  for (auto& waiter : waiters) waiter->try_set_value();  // they find the actor stopping and fail
}

std::exception_ptr ActorCore::dead_error() const {
  std::lock_guard lock(mutex_);
  return dead_error_locked();
}

std::exception_ptr ActorCore::dead_error_locked() const {
  return std::make_exception_ptr(ActorDeadError("actor '" + name_ + "' " + death_));
}

void ActorCore::throw_dead_locked() const { std::rethrow_exception(dead_error_locked()); }

void ActorCore::throw_dead() const { std::rethrow_exception(dead_error()); }

void ActorCore::throw_full() const {
  throw Full(fmt::format("actor '{}': its mailbox is full ({} messages)", name_, mailbox_size_));
}

void ActorCore::schedule_locked() {
  scheduled_ = true;
  // Posted with the lock held: the loop's shutdown takes this lock to refuse messages, so nothing is
  // ever posted to a destroyed loop.
  asio::post(*loop_, [self = shared_from_this()] { self->drain(); });
}

void ActorCore::drain() {
  for (int handled = 0; handled < messages_per_drain; ++handled) {
    if (attention_.load(std::memory_order_acquire)) {
      // A supervisor's decision: rebuild the object now, or wait paused until it decides.
      bool graceful = false;
      {
        std::lock_guard lock(mutex_);
        if (loop_gone_) return;
        if (!restart_queued_) {
          if (paused_) {
            scheduled_ = false;
            return;
          }
          attention_.store(false, std::memory_order_relaxed);
          continue;
        }
        restart_queued_ = false;
        paused_ = false;
        attention_.store(false, std::memory_order_relaxed);
        graceful = restart_graceful_;
      }
      rebuild_here(graceful);
      continue;
    }
    if (pending_ == nullptr) {
      // Everything queued so far, under one lock: senders and the drain meet once per batch, not
      // once per message.
      std::lock_guard lock(mutex_);
      if (loop_gone_) return;
      if (head_ == nullptr) {
        if (!stop_queued_) {
          scheduled_ = false;
          return;
        }
      }
      pending_ = std::exchange(head_, nullptr);
      tail_ = nullptr;
    }
    if (pending_ == nullptr) {
      if (forwards_)
        forward_stop();
      else
        finish_stop();
      return;
    }
    std::unique_ptr<ActorMessage> message(std::exchange(pending_, pending_->next));
    message->next = nullptr;
    if (forwards_) {
      queued_.fetch_sub(1);
      if (senders_waiting_.load()) wake_one_sender();
      forward(std::move(message));
      continue;
    }
    if (message.get() == start_message_) {
      starting_ = true;
      start_message_ = nullptr;
    } else {
      queued_.fetch_sub(1);
      if (senders_waiting_.load()) wake_one_sender();
    }
    current_chain_ = message->take_chain();
    if (message->coroutine()) {
      start_coroutine(std::move(message));
      return;  // draining goes on when the method ends
    }
    std::exception_ptr error;
    {
      InlineResumeScope resume_askers_here(*loop_);
      error = message->run(object(), *this);
    }
    message.reset();
    if (!method_ended(error)) return;
  }
  asio::post(*loop_, [self = shared_from_this()] { self->drain(); });
}

void ActorCore::wake_one_sender() {
  std::shared_ptr<FutureState<void>> woken;
  {
    std::lock_guard lock(mutex_);
    while (!room_waiters_.empty() && !woken) {
      woken = std::move(room_waiters_.front());
      room_waiters_.pop_front();
      if (woken->done()) woken.reset();  // its sender was cancelled
    }
    senders_waiting_.store(!room_waiters_.empty());
  }
  if (woken) woken->try_set_value();
}

std::vector<std::unique_ptr<ActorMessage>> ActorCore::take_all_locked() {
  std::vector<std::unique_ptr<ActorMessage>> taken;
  for (auto* list : {std::exchange(pending_, nullptr), std::exchange(head_, nullptr)}) {
    for (auto* message = list; message != nullptr;) {
      auto* next = message->next;
      taken.emplace_back(message);
      message = next;
    }
  }
  tail_ = nullptr;
  queued_.store(0, std::memory_order_relaxed);
  return taken;
}

namespace {

/// The completion handler of a coroutine method. It owns the message (the method's frame, destroyed
/// before it, may refer to the arguments stored there). Destroyed without being called, it is the
/// loop's destruction taking the method's frame with it: the object may go now.
class MethodEnded {
 public:
  MethodEnded(std::shared_ptr<ActorCore> core, std::unique_ptr<ActorMessage> message)
      : core_(std::move(core)), message_(std::move(message)) {}
  MethodEnded(MethodEnded&&) noexcept = default;
  MethodEnded& operator=(MethodEnded&&) noexcept = default;
  ~MethodEnded() {
    if (!core_) return;
    message_.reset();
    core_->method_abandoned();
  }

  void operator()(std::exception_ptr error) {
    auto core = std::move(core_);
    message_.reset();
    core->coroutine_ended(std::move(error));
  }

 private:
  std::shared_ptr<ActorCore> core_;
  std::unique_ptr<ActorMessage> message_;
};

}  // namespace

void ActorCore::start_coroutine(std::unique_ptr<ActorMessage> message) {
  auto* raw = message.get();
  method_in_flight_ = true;
  asio::co_spawn(ActorExecutor(shared_from_this()), raw->run_async(object(), *this),
                 MethodEnded(shared_from_this(), std::move(message)));
}

void ActorCore::coroutine_ended(std::exception_ptr error) {
  if (method_ended(std::move(error))) drain();
}

void ActorCore::method_abandoned() noexcept {
  method_in_flight_ = false;
  if (loop_gone_) drop_object();
}

bool ActorCore::method_ended(std::exception_ptr error) noexcept {
  method_in_flight_ = false;
  current_chain_.reset();
  const bool was_starting = std::exchange(starting_, false);
  if (!error) return true;
  // Under a supervisor a failed on_start, or a method that threw with restart_on_error, ends this
  // incarnation: the drain goes on to find the supervisor's decision.
  if ((was_starting || restart_on_error_) && report_failure(error)) return true;
  if (!was_starting) return true;
  // on_start failed: the actor never runs. What was sent meanwhile fails; on_stop does not run.
  std::string reason = "failed to start: on_start threw " + describe_error(error);
  log_warning("actor '" + name_ + "' " + reason);
  die(std::move(reason));
  return false;
}

void ActorCore::die(std::string reason) noexcept {
  std::vector<std::unique_ptr<ActorMessage>> dropped;
  {
    std::lock_guard lock(mutex_);
    death_ = std::move(reason);
    accepting_ = false;
    died_ = true;
    dropped = take_all_locked();
  }
  for (auto& message : dropped) message->fail(dead_error());
  finish_stop();
}

void ActorCore::forward(std::unique_ptr<ActorMessage>) {}

void ActorCore::supervise(std::weak_ptr<ChildWatcher> watcher, bool restart_on_error) noexcept {
  watcher_ = std::move(watcher);
  restart_on_error_ = restart_on_error;
}

bool ActorCore::report_failure(std::exception_ptr why) noexcept {
  auto watcher = watcher_.lock();
  if (!watcher) return false;
  {
    std::lock_guard lock(mutex_);
    if (!accepting_) return false;  // stopping already: nothing to restart
    paused_ = true;
    attention_.store(true, std::memory_order_release);
  }
  watcher->child_failed(*this, std::move(why));
  return true;
}

void ActorCore::restart(bool graceful) {
  std::lock_guard lock(mutex_);
  if (stopped_flag_) return;
  restart_queued_ = true;
  restart_graceful_ = graceful;
  attention_.store(true, std::memory_order_release);
  if (!scheduled_) schedule_locked();
}

void ActorCore::resume() {
  std::lock_guard lock(mutex_);
  paused_ = false;
  attention_.store(true, std::memory_order_release);
  if (!scheduled_) schedule_locked();
}

void ActorCore::stop_child(bool wait) {
  request_stop();
  resume();  // a paused (failed) child stops too
  if (wait && current_loop() != loop_) stopped_->wait();
}

std::unique_ptr<ActorMessage> ActorCore::rebuild(std::exception_ptr& error) noexcept {
  error = std::make_exception_ptr(std::logic_error("actor '" + name_ + "' cannot be rebuilt"));
  return nullptr;
}

void ActorCore::rebuild_here(bool graceful) noexcept {
  if (graceful) call_on_stop();
  drop_object();
  std::exception_ptr error;
  auto start = rebuild(error);
  if (error) {
    log_warning("actor '" + name_ + "': its constructor failed on restart: " + describe_error(error));
    if (!report_failure(error)) die("failed to restart: its constructor threw " + describe_error(error));
    return;
  }
  if (start) {
    // on_start of the new incarnation comes before every message that waited.
    start_message_ = start.get();
    start->next = pending_;
    pending_ = start.release();
  }
}

void ActorCore::forward_stop() { finish_stop(); }

void ActorCore::finish_stop() noexcept {
  if (!died_) call_on_stop();
  RoomWaiters waiters;
  {
    std::lock_guard lock(mutex_);
    stopped_flag_ = true;
    scheduled_ = false;
    waiters.swap(room_waiters_);
  }
  for (auto& waiter : waiters) waiter->try_set_value();
  forget();
  drop_object();
  stopped_->try_set_value();
}

void ActorCore::shutdown_with_loop() noexcept {
  std::vector<std::unique_ptr<ActorMessage>> dropped;
  RoomWaiters waiters;
  bool was_stopped = false;
  {
    std::lock_guard lock(mutex_);
    loop_gone_ = true;
    accepting_ = false;
    was_stopped = stopped_flag_;
    stopped_flag_ = true;
    if (!was_stopped) death_ = "is stopped: its Runtime was destroyed";
    dropped = take_all_locked();
    waiters.swap(room_waiters_);
  }
  if (was_stopped) return;
  if (forwards_) abandon_forwarding();
  for (auto& message : dropped) message->fail(dead_error());
  for (auto& waiter : waiters) waiter->try_set_value();
  if (!died_) call_on_stop();
  // A coroutine method's frame, destroyed after this with the loop, may still use the object: then it
  // goes with that frame (MethodEnded), else now (an object holding refs to others would keep them).
  if (!method_in_flight_) drop_object();
  forget();
  stopped_->try_set_value();
}

void ActorCore::forget() noexcept {
  if (named_) {
    auto& names = actor_names();
    std::lock_guard lock(names.mutex);
    const auto found = names.actors.find(name_);
    if (found != names.actors.end() && found->second.lock().get() == this) names.actors.erase(found);
  }
  if (!loop_actors_) return;
  std::shared_ptr<ActorCore> held;  // released after the lock: it may be the last reference
  std::lock_guard lock(loop_actors_->mutex);
  if (!loop_actors_->loop_alive) return;
  if (const auto found = loop_actors_->actors.find(registration_); found != loop_actors_->actors.end()) {
    held = std::move(found->second);
    loop_actors_->actors.erase(found);
  }
}

ActorCore* actor_of(const Executor& executor) noexcept {
  if (const auto* actor = executor.target<ActorExecutor>()) return &actor->core();
  // A task started on the actor's executor (spawn(co_await this_coro::executor, ...)) runs on a strand of it.
  if (const auto* strand = executor.target<asio::strand<Executor>>()) {
    const Executor inner = strand->get_inner_executor();  // a copy: what target() points into must live
    if (const auto* actor = inner.target<ActorExecutor>()) return &actor->core();
  }
  return nullptr;
}

std::shared_ptr<const CallChain> chain_for_ask(const Executor& caller, const ActorCore& target) {
  ActorCore* asker = actor_of(caller);
  if (asker == nullptr) return nullptr;
  if (asker == &target)
    throw DeadlockError("ask cycle: actor '" + target.name() +
                        "' asks itself from one of its own methods; it handles one message at a time, so the "
                        "reply would never come (call the method directly, or tell)");
  // The actors waiting for the asker, innermost first: if the target is one of them, it handles nothing
  // until the asker replies.
  std::vector<const ActorCore*> waiting{asker};
  for (const auto* link = asker->current_chain().get(); link != nullptr; link = link->outer.get()) {
    waiting.push_back(link->asker.get());
    if (link->asker.get() != &target) continue;
    std::string cycle;
    for (auto actor = waiting.rbegin(); actor != waiting.rend(); ++actor) cycle += "'" + (*actor)->name() + "' -> ";
    cycle += "'" + target.name() + "'";
    throw DeadlockError("ask cycle: " + cycle + ": actor '" + asker->name() + "' asks '" + target.name() +
                        "', which is waiting for its reply; the ask would never be answered (tell instead, or "
                        "reply before asking back)");
  }
  return std::make_shared<const CallChain>(CallChain{asker->shared_from_this(), asker->current_chain()});
}

std::string default_actor_name(std::string_view class_name) {
  static std::atomic<std::uint64_t> counter{0};
  // The class's own name, without namespaces or template arguments.
  auto name = class_name.substr(0, class_name.find('<'));
  if (const auto colons = name.rfind("::"); colons != std::string_view::npos) name.remove_prefix(colons + 2);
  return fmt::format("{}-{}", name, ++counter);
}

std::shared_ptr<ActorCore> find_registered_actor(const std::string& name, std::type_index type) {
  auto& names = actor_names();
  std::lock_guard lock(names.mutex);
  const auto found = names.actors.find(name);
  if (found == names.actors.end()) return nullptr;
  auto actor = found->second.lock();
  if (!actor || actor->type() != type || !actor->alive()) return nullptr;
  return actor;
}

void join_actor(const ActorCore& actor) {
  if (current_loop() == &actor.context())
    throw std::logic_error("ActorRef::join: called on the event loop of actor '" + actor.name() +
                           "', which it would block for ever; co_await async_join() instead");
  actor.stopped()->wait();
}

void throw_ask_timeout(const ActorCore& actor, Clock::duration timeout) {
  throw TimeoutError(fmt::format("ask_for: no reply from actor '{}' within {} ms", actor.name(),
                                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
}

void throw_ask_cancelled(const ActorCore& actor) {
  throw CancelledError("ask: cancelled while awaiting the reply of actor '" + actor.name() + "'");
}

}  // namespace cohort::detail
