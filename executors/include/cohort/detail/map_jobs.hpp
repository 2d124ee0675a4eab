// Pool.map_async and starmap_async as Python's MapResult does them: the chunks of one map are pool jobs
// of one object, which decodes each chunk's reply straight into its place in the result vector. No
// future, callback or vector per chunk, and no copy to join them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/codec.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/detail/pool_job.hpp"
#include "cohort/detail/process_pool_core.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {

/// The chunks of one map whose calls return std::vector<R>, `inputs` results in all. The first failure
/// fails the whole; the hooks (the user's callbacks) run before the result is ready. The object deletes
/// itself once the pool is done with every chunk and the submitting thread with it.
template <class R, class Hooks>
class MapJobs {
 public:
  using Result = std::shared_ptr<FutureState<std::vector<R>>>;

  /// Runs `add_all(jobs)`, which gives every chunk to jobs.add(); returns the state of the whole result.
  /// If that throws, chunks that were not handed to the pool never run and the exception is passed on.
  template <class AddAll>
  static Result run(ProcessPoolCore& core, std::size_t inputs, std::size_t chunksize, Hooks hooks, AddAll add_all) {
    auto result = std::make_shared<FutureState<std::vector<R>>>();
    if (inputs == 0) {
      std::vector<R> none;
      hooks.before_value(none);
      result->set_value(std::move(none));
      return result;
    }
    const std::size_t chunks = (inputs + chunksize - 1) / chunksize;
    auto* jobs = new MapJobs(inputs, chunks, result, std::move(hooks));
    try {
      add_all(*jobs);
      jobs->flush(core);
    } catch (...) {
      jobs->failed_.store(true);
      jobs->release(1 + chunks - jobs->submitted_);
      throw;
    }
    jobs->release(1);
    return result;
  }

  /// The next chunk: `count` inputs, their call encoded in `call` (which may be moved from). Chunks go to
  /// `core` in groups, so that a map of many small chunks takes the pool's lock once per group; a group
  /// goes as soon as it holds a worker's batch of bytes, so that work starts while later chunks are
  /// being encoded. Throws what core.submit throws.
  void add(ProcessPoolCore& core, std::string& call, std::size_t count) {
    group_bytes_ += call.size();
    if (call.size() > small_call_bytes)
      group_.push_back(&chunks_.emplace_back(*this, std::move(call), std::string_view(), next_offset_, count));
    else
      group_.push_back(&chunks_.emplace_back(*this, std::string(), keep(call), next_offset_, count));
    next_offset_ += count;
    if (group_.size() == max_group || group_bytes_ >= group_bytes) flush(core);
  }

 private:
  static constexpr std::size_t max_group = 64;
  static constexpr std::size_t group_bytes = 64 * 1024;
  /// Calls up to this size are kept together in blocks instead of one allocation each.
  static constexpr std::size_t small_call_bytes = 1024;
  static constexpr std::size_t call_block_bytes = 64 * 1024;

  /// A chunk's call is its own (a large one) or `kept` in the map's blocks.
  class Chunk final : public PoolJob {
   public:
    Chunk(MapJobs& owner, std::string call, std::string_view kept, std::size_t offset, std::size_t count) noexcept
        : PoolJob(std::move(call)), owner_(owner), kept_(kept), offset_(offset), count_(count) {}

    std::string_view call() const noexcept override { return kept_.empty() ? PoolJob::call() : kept_; }
    bool start() noexcept override { return true; }
    void succeed(std::string_view result) noexcept override { owner_.chunk_succeeded(offset_, count_, result); }
    void fail(std::exception_ptr error) noexcept override { owner_.chunk_failed(std::move(error)); }
    void cancel() noexcept override {
      owner_.chunk_failed(std::make_exception_ptr(CancelledError("the future was cancelled")));
    }

   private:
    MapJobs& owner_;
    std::string_view kept_;
    std::size_t offset_;
    std::size_t count_;
  };

  MapJobs(std::size_t inputs, std::size_t chunks, Result result, Hooks hooks)
      : inputs_(inputs), result_(std::move(result)), hooks_(std::move(hooks)), remaining_(chunks), unreleased_(chunks + 1) {}

  void chunk_succeeded(std::size_t offset, std::size_t count, std::string_view frame) noexcept {
    try {
      decode_into(offset, count, frame);
    } catch (...) {
      chunk_failed(std::current_exception());
      return;
    }
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1 && !failed_.load()) {
      hooks_.before_value(values_);
      result_->try_set_value(std::move(values_));  // a vector's move does not throw
    }
    release(1);
  }

  void chunk_failed(std::exception_ptr error) noexcept {
    if (!failed_.exchange(true)) {
      hooks_.before_error(error);
      result_->try_set_exception(std::move(error));
    }
    release(1);
  }

  /// A chunk's reply, a std::vector<R> as cereal writes it, into values_[offset, offset + count).
  void decode_into(std::size_t offset, std::size_t count, std::string_view frame) {
    // Sized by the first reply, not before the first chunk leaves: the workers start sooner.
    if (values_.empty()) values_.resize(inputs_);
    const auto payload = open_frame(frame, type_hash<std::vector<R>>, type_name<std::vector<R>>());
    BinaryReader archive(payload);
    try {
      cereal::size_type size = 0;
      archive(cereal::make_size_tag(size));
      if (size != count)
        throw SerializationError("a map's chunk of " + std::to_string(count) + " inputs returned " +
                                 std::to_string(size) + " results");
      if constexpr (std::is_arithmetic_v<R> && !std::is_same_v<R, bool>) {
        archive(cereal::binary_data(values_.data() + offset, count * sizeof(R)));
      } else {
        for (std::size_t i = offset; i < offset + count; ++i) {
          if constexpr (std::is_same_v<R, bool>) {
            bool value = false;  // std::vector<bool> has no element to load into
            archive(value);
            values_[i] = value;
          } else {
            archive(values_[i]);
          }
        }
      }
    } catch (const SerializationError&) {
      throw;
    } catch (...) {
      rethrow_as_serialization_error(type_name<std::vector<R>>(), true);
    }
    if (archive.remaining() != 0) throw_trailing_bytes(type_name<std::vector<R>>(), archive.remaining());
  }

  void flush(ProcessPoolCore& core) {
    if (group_.empty()) return;
    core.submit(group_);
    submitted_ += group_.size();
    group_.clear();
    group_bytes_ = 0;
  }

  /// A copy of a small call in calls_, where it stays as long as this object: a block is never
  /// reallocated, so the pool may read earlier calls while later ones are appended.
  std::string_view keep(const std::string& call) {
    if (calls_.empty() || calls_.back().capacity() - calls_.back().size() < call.size())
      calls_.emplace_back().reserve(call_block_bytes);
    auto& block = calls_.back();
    const std::size_t at = block.size();
    block.append(call);
    return std::string_view(block).substr(at);
  }

  void release(std::size_t count) noexcept {
    if (unreleased_.fetch_sub(count, std::memory_order_acq_rel) == count) delete this;
  }

  const std::size_t inputs_;
  std::vector<R> values_;  // sized on the first reply; all replies are decoded on the pool's thread
  Result result_;
  Hooks hooks_;
  std::deque<Chunk> chunks_;  // grows while the pool runs the first ones: a deque never moves them
  std::deque<std::string> calls_;  // blocks of small encoded calls
  std::vector<PoolJob*> group_;    // chunks not handed to the pool yet
  std::size_t group_bytes_ = 0;
  std::size_t next_offset_ = 0;
  std::size_t submitted_ = 0;
  std::atomic<std::size_t> remaining_;   // chunks without a result yet
  std::atomic<std::size_t> unreleased_;  // chunks the pool may still call, plus the submitting thread
  std::atomic<bool> failed_{false};
};

}  // namespace cohort::detail
