// The thread pool's queue and workers. Threads start lazily, up to max_workers, when work arrives and
// no worker is idle; an idle worker is woken only when there is someone to wake.
#include "cohort/thread_pool_executor.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

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

  void push(std::unique_ptr<WorkItem> item) {
    auto* raw = item.release();
    if (tail) {
      tail->next = raw;
    } else {
      head = raw;
    }
    tail = raw;
  }
  WorkItem* pop() {
    auto* item = head;
    head = item->next;
    if (!head) tail = nullptr;
    item->next = nullptr;
    return item;
  }
  WorkItem* take_all() {
    auto* all = head;
    head = tail = nullptr;
    return all;
  }

  ThreadPoolOptions options;
  std::mutex mutex;
  std::condition_variable wakeup;
  WorkItem* head = nullptr;
  WorkItem* tail = nullptr;
  std::size_t idle = 0;
  bool shutting_down = false;
  std::string broken;  // why the pool is broken, empty while it works
  std::vector<std::thread> threads;
};

namespace {

void fail_all(WorkItem* item, const std::string& reason) {
  while (item) {
    std::unique_ptr<WorkItem> owned(item);
    item = item->next;
    owned->fail(std::make_exception_ptr(BrokenThreadPool(reason)));
  }
}

void worker_loop(const std::shared_ptr<ThreadPoolCore::State>& state, std::size_t index) {
  const auto name = fmt::format("{}_{}", state->options.thread_name_prefix, index).substr(0, 15);
  pthread_setname_np(pthread_self(), name.c_str());
  if (state->options.initializer) {
    try {
      state->options.initializer();
    } catch (const std::exception& e) {
      WorkItem* pending = nullptr;
      std::string reason;
      {
        std::lock_guard lock(state->mutex);
        if (state->broken.empty())
          state->broken = fmt::format("a thread initializer failed, the thread pool is not usable anymore: {}", e.what());
        reason = state->broken;
        pending = state->take_all();
      }
      state->wakeup.notify_all();
      fail_all(pending, reason);
      return;
    }
  }
  std::unique_lock lock(state->mutex);
  for (;;) {
    if (state->head) {
      std::unique_ptr<WorkItem> item(state->pop());
      lock.unlock();
      item->run();
      item.reset();
      lock.lock();
      continue;
    }
    if (state->shutting_down || !state->broken.empty()) return;
    ++state->idle;
    state->wakeup.wait(lock);
    --state->idle;
  }
}

}  // namespace

ThreadPoolCore::ThreadPoolCore(ThreadPoolOptions options) : state_(std::make_shared<State>(std::move(options))) {}

ThreadPoolCore::~ThreadPoolCore() { shutdown(true, false); }

std::size_t ThreadPoolCore::max_workers() const noexcept { return state_->options.max_workers; }

void ThreadPoolCore::submit(std::unique_ptr<WorkItem> item) {
  std::unique_lock lock(state_->mutex);
  if (!state_->broken.empty()) throw BrokenThreadPool(state_->broken);
  if (state_->shutting_down) throw Error("ThreadPoolExecutor.submit: cannot schedule new futures after shutdown");
  state_->push(std::move(item));
  if (state_->idle > 0) {
    lock.unlock();
    state_->wakeup.notify_one();
  } else if (state_->threads.size() < state_->options.max_workers) {
    state_->threads.emplace_back(worker_loop, state_, state_->threads.size());
  }
}

void ThreadPoolCore::shutdown(bool wait, bool cancel_futures) {
  WorkItem* cancelled = nullptr;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(state_->mutex);
    state_->shutting_down = true;
    if (cancel_futures) cancelled = state_->take_all();
    if (wait) threads.swap(state_->threads);
  }
  state_->wakeup.notify_all();
  while (cancelled) {
    std::unique_ptr<WorkItem> owned(cancelled);
    cancelled = cancelled->next;
    owned->cancel();
  }
  for (auto& thread : threads) {
    // A worker that shuts its own pool down cannot join itself; it ends on its own once the queue is empty.
    if (thread.get_id() == std::this_thread::get_id())
      thread.detach();
    else
      thread.join();
  }
}

}  // namespace cohort::detail
