// Supervision as Erlang/OTP does it: a supervisor restarts the children that fail (a process actor
// whose worker dies; a local actor whose method throws, with restart_on_error), rebuilt from the same
// constructor arguments behind the same refs, and gives up when they fail too often.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/actor.hpp"
#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/runtime.hpp"
#include "cohort/task.hpp"

namespace cohort {

/// Which children a failure restarts (OTP's strategies).
enum class RestartStrategy {
  one_for_one,  // the failed child
  one_for_all,  // every child
  rest_for_one  // the failed child and those started after it
};

struct SupervisorOptions {
  RestartStrategy strategy = RestartStrategy::one_for_one;
  /// More than this many restarts within `within` and the supervisor gives up (OTP's intensity).
  int max_restarts = 3;
  detail::Clock::duration within = std::chrono::seconds(5);
  /// For logs and errors; "Supervisor-N" when empty.
  std::string name;
  /// Where local children run when the supervisor is used outside any Runtime (see ActorOptions).
  Runtime* runtime = nullptr;
};

namespace detail {
class SupervisorCore;
}  // namespace detail

class Supervisor {
 public:
  explicit Supervisor(SupervisorOptions options = {});
  /// Stops the children (in reverse start order) if stop() was not called.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  /// A local child actor; its ref stays valid across restarts. The arguments are kept (copied) to
  /// build each new incarnation. With `.restart_on_error = true` a method that throws restarts it.
  template <class T, class... Args>
  ActorRef<T> spawn(ActorOptions options, Args&&... args) {
    static_assert((std::is_copy_constructible_v<std::decay_t<Args>> && ...),
                  "cohort::Supervisor::spawn: the constructor's arguments are kept to rebuild the actor on "
                  "restart, so they must be copyable");
    if (options.runtime == nullptr) options.runtime = runtime();
    const bool restart_on_error = options.restart_on_error;
    auto ref = spawn_actor<T>(std::move(options), args...);
    auto cell = std::static_pointer_cast<detail::ActorCell<T>>(ref.core());
    cell->set_factory([kept = std::make_tuple(std::decay_t<Args>(args)...)](std::optional<T>& object) {
      std::apply([&](const auto&... values) { object.emplace(values...); }, kept);
    });
    adopt(ref.core(), restart_on_error);
    return ref;
  }
  template <class T, class... Args>
    requires(!(sizeof...(Args) > 0 && (std::is_same_v<std::remove_cvref_t<Args>, ActorOptions> || ...)))
  ActorRef<T> spawn(Args&&... args) {
    return spawn<T>(ActorOptions{}, std::forward<Args>(args)...);
  }

  /// A child process actor: restarted (a new worker built from the same arguments) when its worker
  /// dies; the call it was handling fails, the calls queued behind it go to the new worker.
  template <class T, class... Args>
  ActorRef<T> spawn_process(ActorOptions options, Args&&... args) {
    if (options.runtime == nullptr) options.runtime = runtime();
    auto ref = spawn_process_actor<T>(std::move(options), std::forward<Args>(args)...);
    adopt(ref.core(), false);
    return ref;
  }
  template <class T, class... Args>
    requires(!(sizeof...(Args) > 0 && (std::is_same_v<std::remove_cvref_t<Args>, ActorOptions> || ...)))
  ActorRef<T> spawn_process(Args&&... args) {
    return spawn_process<T>(ActorOptions{}, std::forward<Args>(args)...);
  }

  /// A supervisor under this one: when it gives up, this one restarts it (all its children), or gives
  /// up in turn. It lives as long as this supervisor.
  Supervisor& spawn_supervisor(SupervisorOptions options);

  /// Stops the children in reverse start order (waiting for each, unless called on their loop).
  void stop();
  /// Blocks until the supervisor has stopped; rethrows why it gave up, if it did. Not from the
  /// children's own loop (use async_join there).
  void join();
  task<void> async_join();
  /// Gave up: too many restarts.
  bool failed() const noexcept;
  const std::string& name() const noexcept;

 private:
  explicit Supervisor(std::shared_ptr<detail::SupervisorCore> core);
  void adopt(std::shared_ptr<detail::ActorCore> child, bool restart_on_error);
  Runtime* runtime() const noexcept;

  std::shared_ptr<detail::SupervisorCore> core_;
  std::vector<std::unique_ptr<Supervisor>> nested_;  // spawn_supervisor's, owned here
};

}  // namespace cohort
