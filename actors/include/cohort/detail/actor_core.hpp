// ActorCore: the untyped half of an actor. A mailbox (FIFO, optionally bounded) drained on the
// actor's event loop by one handler at a time, so one message (one whole method, across its
// co_awaits) runs at a time and never on two threads at once; the actor's life (running, stopping,
// stopped) and the chain of asks its current message serves.
#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

#include "cohort/detail/block_pool.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

class ActorCore;
struct LoopActors;
struct ProcessActorRequest;
struct ManagerRequest;
struct ProcessActorReply;

/// The actors waiting, one behind the other, for the message an actor handles now: an ask made from a
/// method extends its message's chain by that actor. An ask to an actor already in the chain could
/// never be answered (that actor handles nothing until the chain unwinds), so it fails at once.
struct CallChain {
  std::shared_ptr<ActorCore> asker;
  std::shared_ptr<const CallChain> outer;
};

/// One message in a mailbox: a method call with its arguments and (for ask and call) its reply.
class ActorMessage {
 public:
  virtual ~ActorMessage() = default;

  // Messages come and go at millions a second: their memory is recycled, not malloc'd each time. The
  // sized delete of a class with a virtual destructor receives the size of the whole object.
  static void* operator new(std::size_t bytes) { return block_pool_allocate(bytes); }
  static void operator delete(void* block, std::size_t bytes) noexcept { block_pool_deallocate(block, bytes); }

  /// Whether the method is a coroutine: handled by run_async() instead of run().
  virtual bool coroutine() const noexcept = 0;
  /// Runs a plain method on `object` of `actor` and settles the reply; never throws. Returns the
  /// method's exception, if it threw, so that the actor can react (restart_on_error).
  virtual std::exception_ptr run(void* object, const ActorCore& actor) noexcept = 0;
  /// Runs a coroutine method on `object` of `actor` and settles the reply; the task ends with the
  /// method's exception, if it threw.
  virtual task<void> run_async(void* object, const ActorCore& actor) = 0;
  /// The message will not be handled: settles the reply with `error` (a tell has none).
  virtual void fail(std::exception_ptr error) noexcept = 0;
  /// The chain of the ask that sent it, given to the actor that handles it; null for a tell and for an
  /// ask from outside any actor.
  virtual std::shared_ptr<const CallChain> take_chain() noexcept { return nullptr; }

  /// For an actor hosted in another process: the call as a request of that protocol (its entry, the
  /// method, the arguments). SerializationError when the method, an argument or the result cannot cross.
  virtual void encode_remote(ProcessActorRequest& request) const = 0;
  /// For an object served by a manager: the call with its method named (name, type) and its arguments
  /// as the method's parameter types. SerializationError when the class does not list the method in
  /// COHORT_MANAGED_METHODS or a value cannot cross.
  virtual void encode_named(ManagerRequest& request) const = 0;
  /// Settles the reply with what that process answered: the result's codec frame, or the failure.
  virtual void settle_remote(const ProcessActorReply& reply) noexcept = 0;

  ActorMessage* next = nullptr;
};

/// Why an actor refused a message.
enum class SendRefusal { none, full, dead };

/// What a supervisor watches and restarts: an actor, or a supervisor under another.
class SupervisedChild {
 public:
  virtual ~SupervisedChild() = default;
  virtual const std::string& child_name() const noexcept = 0;
  /// A new incarnation: the object (or the worker process) rebuilt from the same arguments; messages
  /// queued meanwhile are handled by it. `graceful`: the old one stops first (on_stop runs); otherwise it
  /// has just failed.
  virtual void restart(bool graceful) = 0;
  /// Stops for good (the supervisor stops, or gave up); waits when `wait` and not on the child's loop.
  virtual void stop_child(bool wait) = 0;
};

/// Where a supervised child reports that its incarnation failed.
class ChildWatcher {
 public:
  virtual ~ChildWatcher() = default;
  /// The child is paused (it handles nothing) until restart() or stop_child().
  virtual void child_failed(SupervisedChild& child, std::exception_ptr why) noexcept = 0;
};

using RoomWaiters = std::list<std::shared_ptr<FutureState<void>>>;

class ActorCore : public std::enable_shared_from_this<ActorCore>, public SupervisedChild {
 public:
  /// `named`: registered under `name` for find_actor (else the name only shows in logs and errors).
  ActorCore(boost::asio::io_context& loop, std::string name, std::type_index type, std::size_t mailbox_size,
            bool named);
  ActorCore(const ActorCore&) = delete;
  ActorCore& operator=(const ActorCore&) = delete;
  virtual ~ActorCore();

  const std::string& name() const noexcept { return name_; }
  std::type_index type() const noexcept { return type_; }
  boost::asio::io_context& context() const noexcept { return *loop_; }
  /// Accepting messages: started and not asked to stop.
  bool alive() const noexcept;

  /// Queues `message` unless the actor is stopped or its bounded mailbox is full; a refused message
  /// stays with the caller.
  SendRefusal try_send(std::unique_ptr<ActorMessage>& message);
  /// try_send that throws: Full, or ActorDeadError naming the actor.
  void send(std::unique_ptr<ActorMessage> message);
  /// send, except that an idle actor sent to from a thread of its loop handles the message before this
  /// returns. For a sender that is no actor's method and holds no lock: a process actor's worker hands
  /// each request to its hosted actor so.
  void send_and_handle(std::unique_ptr<ActorMessage> message);
  /// Waits for room in a full bounded mailbox, then queues; throws ActorDeadError.
  task<void> send_when_room(std::unique_ptr<ActorMessage> message);

  /// Stops accepting messages; those already queued are handled, then on_stop runs. Idempotent.
  void request_stop();
  /// Done once the actor has stopped (its on_stop has run).
  const std::shared_ptr<FutureState<void>>& stopped() const noexcept { return stopped_; }

  /// The chain of the message being handled. Read only from that message's own method.
  const std::shared_ptr<const CallChain>& current_chain() const noexcept { return current_chain_; }

  /// start() for an actor whose messages are forwarded (no on_start here).
  void start_forwarding() { start(nullptr); }
  /// Stops at once for `reason` (completing "actor 'name' ..."): what is queued fails with
  /// ActorDeadError, on_stop does not run. From the actor's loop, or before the actor is known.
  void die(std::string reason) noexcept;
  /// The stop is complete: on_stop (unless died), the name is free, stopped() is done.
  void finish_stop() noexcept;

  /// Under a supervisor: failures go to `watcher`, which restarts the actor (or stops it) instead of the
  /// actor dying; `restart_on_error`: a method that throws is such a failure too.
  void supervise(std::weak_ptr<ChildWatcher> watcher, bool restart_on_error) noexcept;

  const std::string& child_name() const noexcept override { return name_; }
  void restart(bool graceful) override;
  void stop_child(bool wait) override;

  /// A coroutine method has ended (with `error`, if it threw): draining goes on.
  void coroutine_ended(std::exception_ptr error);
  /// A coroutine method's frame was destroyed unfinished (its loop is being destroyed).
  void method_abandoned() noexcept;

  /// The ActorDeadError for a message refused now.
  std::exception_ptr dead_error() const;
  [[noreturn]] void throw_dead() const;
  [[noreturn]] void throw_full() const;

 protected:
  /// Makes the actor known (its Runtime, its name) and queues `first` (on_start, or nothing) ahead of
  /// every message. Called once by spawn_actor, after the object is built.
  void start(std::unique_ptr<ActorMessage> first);

  /// A core whose messages are not run here but handed to forward() (a process actor's).
  /// `from_any_thread`: forward() is safe on any thread, so a message sent to an idle core is forwarded
  /// by its sender's thread at once, not by the loop a turn later (a manager's proxy: its connection
  /// writes from any thread).
  void forward_messages(bool from_any_thread = false) noexcept {
    forwards_ = true;
    forwards_from_any_thread_ = from_any_thread;
  }
  virtual void forward(std::unique_ptr<ActorMessage> message);
  /// Every message before the stop request has been forwarded: stop the far side, then call
  /// finish_stop() (or die()) once it has.
  virtual void forward_stop();
  /// The loop is being destroyed: end the far side now.
  virtual void abandon_forwarding() noexcept {}

  /// This incarnation failed: true when a supervisor took it (the actor is paused until it restarts
  /// or stops it), false when there is none.
  bool report_failure(std::exception_ptr why) noexcept;
  bool watcher_expired() const noexcept { return watcher_.expired(); }
  /// Resumes handling messages after a restart.
  void resume();
  /// Rebuilds the object for a restart (false, with `error` set, when its constructor threw) and
  /// returns its on_start message, if the class has one. The old object is gone already.
  virtual std::unique_ptr<ActorMessage> rebuild(std::exception_ptr& error) noexcept;

  virtual void* object() noexcept = 0;
  /// on_stop, when the class has one; its exception is logged.
  virtual void call_on_stop() noexcept = 0;
  /// Destroys the object once the actor has stopped.
  virtual void drop_object() noexcept = 0;

 private:
  friend class ActorSystem;

  /// With the lock held: queues a user message and schedules the drain if needed.
  void append_locked(ActorMessage* message);
  std::exception_ptr dead_error_locked() const;
  [[noreturn]] void throw_dead_locked() const;
  /// With the lock held: the queue was empty and nothing drains it; post the drain.
  void schedule_locked();
  SendRefusal try_send(std::unique_ptr<ActorMessage>& message, bool handle_if_idle);
  void drain();
  /// On the drain: the supervisor's restart of a local actor.
  void rebuild_here(bool graceful) noexcept;
  void wake_one_sender();
  /// With the lock held: every message not handled yet (on the loop's thread, or once it is gone).
  std::vector<std::unique_ptr<ActorMessage>> take_all_locked();
  /// Runs a coroutine method; draining resumes when it ends.
  void start_coroutine(std::unique_ptr<ActorMessage> message);
  /// After each method: false when draining must end (on_start failed, so the actor has stopped).
  bool method_ended(std::exception_ptr error) noexcept;
  /// Unregisters the name and leaves the loop's list of actors.
  void forget() noexcept;
  /// The actor's Runtime is being destroyed: queued messages fail, on_stop runs, nothing more runs.
  void shutdown_with_loop() noexcept;

  boost::asio::io_context* loop_;
  std::string name_;
  std::type_index type_;
  std::size_t mailbox_size_;  // 0: unbounded
  bool named_;
  bool forwards_ = false;
  bool forwards_from_any_thread_ = false;
  std::shared_ptr<LoopActors> loop_actors_;
  std::uint64_t registration_ = 0;  // in loop_actors_

  mutable std::mutex mutex_;  // guards what follows, up to current_chain_
  ActorMessage* head_ = nullptr;
  ActorMessage* tail_ = nullptr;
  std::atomic<std::size_t> queued_{0};  // user messages not yet taken to run (on_start is not counted)
  std::atomic<bool> senders_waiting_{false};  // room_waiters_ is not empty
  std::atomic<bool> attention_{false};  // paused_ or restart_queued_ may be set: the drain looks
  bool started_ = false;
  bool accepting_ = false;
  bool scheduled_ = false;  // a drain is posted or running, or a coroutine method is in flight
  bool stop_queued_ = false;
  bool stopped_flag_ = false;
  bool loop_gone_ = false;
  bool died_ = false;  // stopped by die(): on_stop does not run
  bool paused_ = false;  // a supervised failure waits for its supervisor: nothing is handled
  bool restart_queued_ = false;  // restart() asked the drain to rebuild the object at its next turn
  bool restart_graceful_ = false;
  std::weak_ptr<ChildWatcher> watcher_;
  bool restart_on_error_ = false;
  ActorMessage* start_message_ = nullptr;  // on_start, until the drain takes it
  std::string death_ = "is stopped";  // completes "actor 'name' ..." in ActorDeadError
  // send_when_room calls, oldest first. A list, which costs nothing while empty (as it nearly always is):
  // libstdc++'s deque allocates over 500 bytes when built, the most of an idle actor's footprint.
  RoomWaiters room_waiters_;

  // Touched only by the drain and the message being handled.
  ActorMessage* pending_ = nullptr;  // taken from the queue in one go, handled in order
  std::shared_ptr<const CallChain> current_chain_;
  bool starting_ = false;  // that message is on_start
  bool method_in_flight_ = false;  // a coroutine method runs

  std::shared_ptr<FutureState<void>> stopped_;
};

/// An ask from a coroutine running on `caller` (its executor) to `target`: the chain the message
/// carries, or null when the caller is no actor. Throws DeadlockError when `target` is the caller or
/// is waiting for it.
std::shared_ptr<const CallChain> chain_for_ask(const Executor& caller, const ActorCore& target);

/// "type: message" of an exception, for logs and reasons; never throws.
std::string describe_error(const std::exception_ptr& error) noexcept;

/// The actor whose coroutine method runs on `executor`, or null.
ActorCore* actor_of(const Executor& executor) noexcept;

/// The name of an actor spawned without one: its class and a number ("Counter-3").
std::string default_actor_name(std::string_view class_name);

/// The actor registered under `name` with type `type`, if alive.
std::shared_ptr<ActorCore> find_registered_actor(const std::string& name, std::type_index type);

}  // namespace cohort::detail
