// A process actor: its object lives in a worker process of its own, which runs an event loop hosting
// it as a local actor; in this process its ref is an actor whose mailbox forwards every message to that
// worker (requests of the remote-call protocol) and settles the replies that come back.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <typeindex>
#include <utility>

#include "cohort/connection.hpp"
#include "cohort/detail/actor_core.hpp"
#include "cohort/process.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

/// Builds the hosted actor on the worker's loop, named as in the parent.
using HostedActorFactory = std::function<std::shared_ptr<ActorCore>(boost::asio::io_context& loop, std::string name)>;

/// The worker's main: runs a loop hosting the actor `make` builds, answers requests from `parent` until
/// it is told to stop or the parent goes away.
void serve_process_actor(Connection parent, std::string name, const HostedActorFactory& make);

/// Runs `job` (a Process's start) on the thread that starts cohort's daemon workers and waits for it;
/// rethrows what it threw. A daemon child is killed when the thread that forked it ends, so workers are
/// started from this thread, which lasts as long as the program.
void run_on_launcher_thread(const std::function<void()>& job);

/// Builds the worker's process: its target must take the child's end of the connection first.
using WorkerFactory = std::function<std::unique_ptr<Process>(Connection child_end)>;

/// The parent's side.
class ProcessActorCore : public ActorCore {
 public:
  ProcessActorCore(boost::asio::io_context& loop, std::string name, std::type_index type, std::size_t mailbox_size,
                   bool named);
  ~ProcessActorCore() override;

  /// Starts the worker (on a thread that lives as long as the program, so that a daemon worker is tied
  /// to the program, not to the thread that spawned it), waits until it has built the object (its
  /// constructor's exception is rethrown here) and starts forwarding. `make_worker` is kept: a
  /// supervisor's restart starts a new worker with it.
  void launch(WorkerFactory make_worker);

  /// The worker's process id.
  int pid() const noexcept;

  /// A new worker, built from the same arguments; the calls the old one did not answer (but the one it
  /// was handling, if it died) go to the new one first.
  void restart(bool graceful) override;

  struct Link;

 private:
  void* object() noexcept override { return nullptr; }
  void call_on_stop() noexcept override {}
  void drop_object() noexcept override {}
  void forward(std::unique_ptr<ActorMessage> message) override;
  void forward_stop() override;
  void abandon_forwarding() noexcept override;

  void start_worker();
  void relaunch_worker() noexcept;
  static task<void> read_replies(boost::asio::io_context& loop, std::shared_ptr<Link> link, std::uint64_t generation,
                                 std::shared_ptr<Connection> connection, std::shared_ptr<Process> process);
  /// The worker of the current generation has ended: after a stop (`stopped`), or died for `reason`.
  void worker_ended(bool stopped, const std::string& reason) noexcept;

  std::shared_ptr<Link> link_;
  WorkerFactory make_worker_;
};

template <class T, class... Args>
void host_process_actor(Connection parent, std::string name, Args... args);

}  // namespace cohort::detail
