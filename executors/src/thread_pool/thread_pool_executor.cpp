// The thread pool's queue and workers. Threads start lazily, up to max_workers, when work arrives and
// no worker is idle.
//
// Handing tiny tasks to threads costs little as long as nobody sleeps: waking a sleeping thread is a
// system call on both sides and, on virtual machines, tens of microseconds. So submitting is a lock-free
// push, and an idle worker first polls the queue for a moment ("searching"; at most `max_searching` of
// them at a time) before it sleeps. A submitter wakes a sleeping worker only when nobody is searching; a
// searching worker that takes an item and sees more behind it wakes the next one itself. A burst of
// submissions thus pays for at most one wake-up per worker, and a steady stream of tiny tasks for none.
// (Go's scheduler and Tokio hand work to threads the same way.)
//
// Two pairs of atomics make this safe without a lock on the hot path: a submitter pushes, then reads
// `searching`; a worker that stops searching decrements `searching`, then reads the queue's size. Both
// are sequentially consistent, so at least one of the two sees the other and makes sure a worker comes.
#include "cohort/thread_pool_executor.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "cohort/detail/mpsc_queue.hpp"
#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {

namespace {

std::atomic<int> pool_counter{0};

std::size_t default_max_workers() {
  const auto cpus = std::max(1u, std::thread::hardware_concurrency());
  return std::min<std::size_t>(32, cpus + 4);
}

}  // namespace

struct ThreadPoolCore::State {
  explicit State(ThreadPoolOptions opts) : options(std::move(opts)) {
    if (options.max_workers == 0) options.max_workers = default_max_workers();
    if (options.thread_name_prefix.empty())
      options.thread_name_prefix = fmt::format("ThreadPool-{}", pool_counter.fetch_add(1) + 1);
  }

  /// The consumer side of the queue: one worker pops at a time.
  WorkItem* pop() {
    std::lock_guard lock(pop_mutex);
    return static_cast<WorkItem*>(queue.pop());
  }

  /// Takes every queued item; only once no submit can push anymore (see close()).
  std::vector<WorkItem*> take_all() {
    std::vector<WorkItem*> items;
    std::lock_guard lock(pop_mutex);
    while (queue.size() > 0)
      if (auto* node = queue.pop()) items.push_back(static_cast<WorkItem*>(node));
    return items;
  }

  /// Makes submit() throw from now on and waits out the submits that already passed that check, so that
  /// nothing is pushed afterwards.
  void close() {
    closed.store(true, std::memory_order_seq_cst);
    while (submitting.load(std::memory_order_seq_cst) > 0) std::this_thread::yield();
  }

  bool stopping() const { return shutting_down || !broken.empty(); }

  ThreadPoolOptions options;
  const std::size_t max_searching = std::max(1u, std::thread::hardware_concurrency() / 2);

  MpscQueue queue;
  std::mutex pop_mutex;
  std::atomic<bool> closed{false};        // submit() throws; searching workers stop polling
  std::atomic<int> submitting{0};         // submits past the `closed` check that have not pushed yet
  std::atomic<std::size_t> searching{0};  // workers polling the queue, or woken and not yet looking

  std::mutex mutex;  // guards the fields below
  std::condition_variable wakeup;
  std::size_t sleeping = 0;     // workers asleep on `wakeup` that nobody has picked to wake
  std::size_t wake_tokens = 0;  // wake-ups handed out and not yet taken by a worker
  bool shutting_down = false;
  std::string broken;  // why the pool is broken, empty while it works
  std::vector<std::thread> threads;
};

namespace {

void worker_loop(const std::shared_ptr<ThreadPoolCore::State>& state, std::size_t index);

/// Called with `mutex` held when work may be waiting and nobody may be searching: starts a thread
/// (below max_workers) or picks a sleeping worker to wake. Returns true in the latter case: the caller
/// notifies `wakeup` after unlocking. The picked worker counts as searching from here on, so that
/// nobody wakes a second one for the same work.
bool provide_worker(const std::shared_ptr<ThreadPoolCore::State>& state) {
  if (state->queue.size() == 0 || state->searching.load(std::memory_order_seq_cst) > 0 || state->stopping())
    return false;
  if (state->sleeping > 0) {
    --state->sleeping;
    ++state->wake_tokens;
    state->searching.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }
  if (state->threads.size() < state->options.max_workers)
    state->threads.emplace_back(worker_loop, state, state->threads.size());
  return false;
}

void provide_worker_if_needed(const std::shared_ptr<ThreadPoolCore::State>& state) {
  if (state->queue.size() == 0 || state->searching.load(std::memory_order_seq_cst) > 0) return;
  std::unique_lock lock(state->mutex);
  if (provide_worker(state)) {
    lock.unlock();
    state->wakeup.notify_one();
  }
}

void break_pool(const std::shared_ptr<ThreadPoolCore::State>& state, const std::string& what) {
  std::string reason;
  {
    std::lock_guard lock(state->mutex);
    if (state->broken.empty())
      state->broken = fmt::format("a thread initializer failed, the thread pool is not usable anymore: {}", what);
    reason = state->broken;
  }
  state->close();
  state->wakeup.notify_all();
  for (auto* item : state->take_all()) item->fail_queued(std::make_exception_ptr(BrokenThreadPool(reason)));
}

void worker_loop(const std::shared_ptr<ThreadPoolCore::State>& state, std::size_t index) {
  const auto name = fmt::format("{}_{}", state->options.thread_name_prefix, index).substr(0, 15);
  pthread_setname_np(pthread_self(), name.c_str());
  if (state->options.initializer) {
    try {
      state->options.initializer();
    } catch (const std::exception& e) {
      break_pool(state, e.what());
      return;
    }
  }

  bool searching = false;  // counted in state->searching
  // After this, the queue is checked again, and a worker provided for what is there.
  auto stop_searching = [&] {
    if (!searching) return;
    searching = false;
    state->searching.fetch_sub(1, std::memory_order_seq_cst);
  };
  for (;;) {
    if (auto* item = state->pop()) {
      stop_searching();
      provide_worker_if_needed(state);
      item->run();
      continue;
    }
    if (state->queue.size() > 0) {  // a push in progress: its item is about to be linked
      std::this_thread::yield();
      continue;
    }
    if (!searching && state->searching.load(std::memory_order_relaxed) < state->max_searching) {
      searching = true;
      state->searching.fetch_add(1, std::memory_order_seq_cst);
    }
    if (searching && spin_until([&] {
          return state->queue.size() > 0 || state->closed.load(std::memory_order_relaxed);
        }) && !state->closed.load(std::memory_order_relaxed))
      continue;
    stop_searching();

    std::unique_lock lock(state->mutex);
    if (state->queue.size() > 0) {
      // Work came while this worker stopped searching: take it, or leave it to one that searches.
      if (provide_worker(state)) {
        lock.unlock();
        state->wakeup.notify_one();
      }
      continue;
    }
    if (state->stopping()) return;
    ++state->sleeping;
    state->wakeup.wait(lock, [&] { return state->wake_tokens > 0 || state->stopping(); });
    if (state->wake_tokens > 0) {
      --state->wake_tokens;
      searching = true;  // the waker counted this worker in state->searching
    } else {
      --state->sleeping;
    }
  }
}

}  // namespace

ThreadPoolCore::ThreadPoolCore(ThreadPoolOptions options) : state_(std::make_shared<State>(std::move(options))) {}

ThreadPoolCore::~ThreadPoolCore() { shutdown(true, false); }

std::size_t ThreadPoolCore::max_workers() const noexcept { return state_->options.max_workers; }

void ThreadPoolCore::submit(WorkItem& item) {
  auto& state = *state_;
  state.submitting.fetch_add(1, std::memory_order_seq_cst);
  if (state.closed.load(std::memory_order_seq_cst)) {
    state.submitting.fetch_sub(1, std::memory_order_seq_cst);
    std::string broken;
    {
      std::lock_guard lock(state.mutex);
      broken = state.broken;
    }
    item.cancel_queued();
    if (!broken.empty()) throw BrokenThreadPool(broken);
    throw Error("ThreadPoolExecutor.submit: cannot schedule new futures after shutdown");
  }
  state.queue.push(&item);
  state.submitting.fetch_sub(1, std::memory_order_seq_cst);
  provide_worker_if_needed(state_);
}

void ThreadPoolCore::shutdown(bool wait, bool cancel_futures) {
  std::vector<std::thread> threads;
  state_->close();
  {
    std::lock_guard lock(state_->mutex);
    // Work pushed by a submit that raced with close(), when no thread had been started yet for it.
    if (state_->threads.empty() && state_->queue.size() > 0 && state_->broken.empty())
      state_->threads.emplace_back(worker_loop, state_, 0);
    state_->shutting_down = true;
    if (wait) threads.swap(state_->threads);
  }
  state_->wakeup.notify_all();
  if (cancel_futures)
    for (auto* item : state_->take_all()) item->cancel_queued();
  for (auto& thread : threads) {
    // A worker that shuts its own pool down cannot join itself; it ends on its own once the queue is empty.
    if (thread.get_id() == std::this_thread::get_id())
      thread.detach();
    else
      thread.join();
  }
}

}  // namespace cohort::detail
