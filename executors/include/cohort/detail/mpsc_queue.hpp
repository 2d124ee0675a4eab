// An intrusive multi-producer, single-consumer FIFO (Dmitry Vyukov's design): a push is one atomic
// exchange and never waits for anyone, so submitters never contend with the threads that take work.
// One consumer at a time may pop; a pool serializes its workers' pops with a mutex of its own.
#pragma once

#include <atomic>
#include <cstddef>

namespace cohort::detail {

struct MpscNode {
  std::atomic<MpscNode*> next{nullptr};
};

class MpscQueue {
 public:
  MpscQueue() = default;
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  /// Any thread. The node belongs to the queue until pop() returns it.
  void push(MpscNode* node) noexcept {
    link(node);
    size_.fetch_add(1, std::memory_order_seq_cst);
  }

  /// The consumer only. Null when the queue is empty, and also, for a moment, while a producer is
  /// between its exchange and its link: the caller retries while size() says there is work.
  MpscNode* pop() noexcept {
    MpscNode* head = head_;
    MpscNode* next = head->next.load(std::memory_order_acquire);
    if (head == &stub_) {
      if (next == nullptr) return nullptr;
      head_ = head = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next == nullptr) {
      // `head` is the last node linked so far; it can be handed out only with something behind it.
      if (head != tail_.load(std::memory_order_acquire)) return nullptr;
      link(&stub_);
      next = head->next.load(std::memory_order_acquire);
      if (next == nullptr) return nullptr;
    }
    head_ = next;
    size_.fetch_sub(1, std::memory_order_seq_cst);
    return head;
  }

  /// Items pushed and not popped yet. Exact once pushes and pops have returned; any thread may read it.
  std::size_t size() const noexcept { return size_.load(std::memory_order_seq_cst); }

 private:
  void link(MpscNode* node) noexcept {
    node->next.store(nullptr, std::memory_order_relaxed);
    MpscNode* previous = tail_.exchange(node, std::memory_order_acq_rel);
    previous->next.store(node, std::memory_order_release);
  }

  MpscNode stub_;
  alignas(64) std::atomic<MpscNode*> tail_{&stub_};  // producers' end
  alignas(64) MpscNode* head_ = &stub_;              // the consumer's end
  alignas(64) std::atomic<std::size_t> size_{0};
};

}  // namespace cohort::detail
