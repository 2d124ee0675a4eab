// Barrier (Python: multiprocessing.Barrier): `parties` processes or threads wait until all of them have
// arrived; wait() then returns each a different index in [0, parties), in arrival order. abort(), reset()
// and a wait() that times out break the round: whoever waits in it gets BrokenBarrierError. After an abort
// or a timeout the barrier stays broken until reset(). Copies share the barrier; a Barrier passed as a
// Process argument reaches the child under every start method.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include <cereal/access.hpp>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/robust_mutex.hpp"
#include "cohort/detail/shared_mapping.hpp"

namespace cohort {

namespace detail {

struct BarrierState {
  RobustMutex mutex;
  std::uint32_t parties = 0;
  std::uint32_t arrived = 0;             // in the current round
  std::uint32_t broken = 0;              // after abort() or a timeout, until reset()
  std::atomic<std::uint32_t> round{0};   // the futex word: advances when a round ends, however it ends
  std::int64_t default_timeout_ns = -1;  // -1: none
  // Bit r % 1024: round r ended broken. A waiter reads the bit of its round after the round ended, and
  // 1024 further rounds would have to end before it wakes for the bit to be reused.
  std::array<std::atomic<std::uint64_t>, 16> broken_rounds{};
};

}  // namespace detail

class Barrier {
 public:
  /// std::invalid_argument if parties is 0. `timeout`: the default for wait().
  explicit Barrier(std::uint32_t parties) : Barrier(parties, std::nullopt) {}
  template <class Rep, class Period>
  Barrier(std::uint32_t parties, std::chrono::duration<Rep, Period> timeout)
      : Barrier(parties,
                std::optional<std::int64_t>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(detail::to_clock_duration(timeout)).count())) {
  }

  /// Waits for the other parties (at most the barrier's default timeout, if it has one) and returns this
  /// party's index. BrokenBarrierError if the round is or gets broken, or when the time is up, which also
  /// breaks the barrier for the others.
  std::uint32_t wait();
  template <class Rep, class Period>
  std::uint32_t wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

  /// Breaks the barrier: waiters and later callers of wait() get BrokenBarrierError until reset().
  void abort();
  /// Back to the initial state; whoever waits now gets BrokenBarrierError.
  void reset();
  bool broken() const;
  /// How many parties wait in the current round.
  std::uint32_t n_waiting() const;
  std::uint32_t parties() const noexcept { return state_->parties; }

 private:
  friend class cereal::access;
  Barrier() = default;  // to load into
  Barrier(std::uint32_t parties, std::optional<std::int64_t> default_timeout_ns);

  template <class Archive>
  void save(Archive& archive) const {
    detail::save_mapping(archive, mapping_, "Barrier");
  }
  template <class Archive>
  void load(Archive& archive) {
    mapping_ = detail::load_mapping(archive, sizeof(detail::BarrierState), "Barrier");
    state_ = static_cast<detail::BarrierState*>(mapping_->data());
  }

  std::uint32_t wait_until(std::optional<detail::Clock::time_point> deadline);
  void lock(const char* operation) const;
  // Only with the mutex held. const: it changes the shared state, not this handle.
  void end_round(bool broken) const noexcept;

  std::shared_ptr<detail::SharedMapping> mapping_;
  detail::BarrierState* state_ = nullptr;
};

}  // namespace cohort
