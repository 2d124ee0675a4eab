// MapResult<R>: the lazy, ordered result of Executor::map (Python: the generator Executor.map returns).
#pragma once

#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "cohort/detail/clock.hpp"
#include "cohort/future.hpp"

namespace cohort {

/// Options of Executor::map. `timeout` counts from the call to map(), as in Python.
struct MapOptions {
  std::size_t chunksize = 1;
  std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt;
};

/// Results of a map in input order, fetched as iteration reaches them; iterating past an unfinished
/// one waits for it (TimeoutError past the deadline), rethrowing its exception. Destroying the result
/// cancels the work that has not started.
template <class R>
class MapResult {
 public:
  MapResult(std::vector<Future<std::vector<R>>> chunks, std::optional<detail::Clock::time_point> deadline)
      : chunks_(std::move(chunks)), deadline_(deadline) {}
  MapResult(MapResult&&) noexcept = default;
  MapResult& operator=(MapResult&&) noexcept = default;
  MapResult(const MapResult&) = delete;
  MapResult& operator=(const MapResult&) = delete;
  ~MapResult() {
    for (std::size_t i = next_chunk_; i < chunks_.size(); ++i) chunks_[i].cancel();
  }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    using reference = R&;
    using pointer = R*;

    iterator() = default;
    explicit iterator(MapResult* owner) : owner_(owner) {}

    R& operator*() const { return owner_->current_[owner_->position_]; }
    R* operator->() const { return &**this; }
    iterator& operator++() {
      owner_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    bool at_end() const noexcept { return owner_->exhausted(); }

    MapResult* owner_ = nullptr;
  };

  /// Waits for the first result. Call once: the results are consumed as they are iterated.
  iterator begin() {
    if (!started_) {
      started_ = true;
      load_next_chunk();
    }
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  /// All remaining results, in order.
  std::vector<R> collect() {
    std::vector<R> all;
    for (auto& value : *this) all.push_back(std::move(value));
    return all;
  }

 private:
  friend class iterator;
  bool exhausted() const noexcept { return position_ >= current_.size() && next_chunk_ >= chunks_.size(); }

  void advance() {
    if (++position_ >= current_.size()) load_next_chunk();
  }

  void load_next_chunk() {
    current_.clear();
    position_ = 0;
    while (current_.empty() && next_chunk_ < chunks_.size()) {
      auto& state = *chunks_[next_chunk_].shared_state();
      if (!deadline_)
        state.wait();
      else if (!state.wait_until(*deadline_))
        detail::throw_timeout("map", *deadline_ - started_at_);
      state.rethrow_if_failed();
      current_ = state.take();
      ++next_chunk_;
    }
  }

  std::vector<Future<std::vector<R>>> chunks_;
  std::optional<detail::Clock::time_point> deadline_;
  detail::Clock::time_point started_at_ = detail::Clock::now();
  std::vector<R> current_;
  std::size_t position_ = 0;
  std::size_t next_chunk_ = 0;
  bool started_ = false;
};

}  // namespace cohort
