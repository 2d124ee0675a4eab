// Event (Python: multiprocessing.Event): a flag in shared memory that processes and threads set, clear
// and wait for. Copies share the flag; an Event passed as a Process argument reaches the child under every
// start method.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include <cereal/access.hpp>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/shared_mapping.hpp"

namespace cohort {

namespace detail {

struct EventState {
  // Bit 0: the flag. The rest counts set() calls that raised it, so that a waiter woken by a set() that a
  // clear() undid at once still knows the event happened (as threading.Event.wait does).
  std::atomic<std::uint32_t> word{0};
  std::atomic<std::uint32_t> sleepers{0};
};

}  // namespace detail

class Event {
 public:
  Event();

  /// Sets the flag and wakes every waiter.
  void set();
  void clear() noexcept;
  bool is_set() const noexcept;

  /// Waits until the flag is set. Returns true at once if it is set; false if the timeout passed first.
  bool wait() { return wait_until(std::nullopt); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

 private:
  friend class cereal::access;
  template <class Archive>
  void save(Archive& archive) const {
    detail::save_mapping(archive, mapping_, "Event");
  }
  template <class Archive>
  void load(Archive& archive) {
    mapping_ = detail::load_mapping(archive, sizeof(detail::EventState), "Event");
    state_ = static_cast<detail::EventState*>(mapping_->data());
  }

  bool wait_until(std::optional<detail::Clock::time_point> deadline);

  std::shared_ptr<detail::SharedMapping> mapping_;
  detail::EventState* state_ = nullptr;
};

}  // namespace cohort
