// The workers' lifecycle, on the side of whoever holds the token: starting workers, dealing with one that
// ended, breaking the pool, and stopping them all.
#include <csignal>
#include <cstring>
#include <exception>
#include <vector>

#include <fmt/format.h>

#include "cohort/error.hpp"
#include "cohort/log.hpp"
#include "process_pool/process_pool_internal.hpp"

namespace cohort::detail {

namespace {

using namespace std::chrono_literals;

/// How long terminate() gives workers between SIGTERM and SIGKILL, and close() gives them to exit.
constexpr auto terminate_grace = 200ms;
constexpr auto exit_grace = 5s;

std::atomic<unsigned> worker_counter{0};

}  // namespace

auto ProcessPoolCore::State::start_worker() -> Worker {
  auto [pool_end, worker_end] = Pipe();
  ProcessOptions options{.name = fmt::format("{}-{}", config.name_prefix, ++worker_counter),
                         .daemon = true,
                         .start_method = config.start_method};
  auto process = std::make_unique<Process>(std::move(options), &pool_worker_main, std::move(worker_end), worker_options);
  process->start();
  Worker worker;
  worker.process = std::move(process);
  worker.channel = std::move(pool_end);
  worker.presence.emplace(worker.channel);
  worker.tasks_left = config.max_tasks_per_child == 0 ? SIZE_MAX : config.max_tasks_per_child;
  return worker;
}

void ProcessPoolCore::State::publish_pids() {
  std::vector<int> now;
  for (auto& worker : workers) now.push_back(worker.process->pid());
  std::lock_guard lock(mutex);
  pids = std::move(now);
}

void ProcessPoolCore::State::check_workers(const std::vector<char>* suspects) {
  for (std::size_t i = 0; i < workers.size();) {
    std::optional<int> code;
    if (!suspects || (*suspects)[i] || workers[i].lost) code = workers[i].process->exitcode();
    if (!code) {
      ++i;
      continue;
    }
    const auto before = workers.size();
    if (!worker_ended(i, *code)) return;  // the pool broke
    suspects = nullptr;                   // indices may have moved: look at every worker from here
    if (workers.size() == before) ++i;    // replaced in place; the new one has not ended
  }
}

bool ProcessPoolCore::State::worker_ended(std::size_t index, int exitcode) {
  // Replies it sent before it ended are still in its ring.
  collect(index, SIZE_MAX);
  if (!workers_intact()) return false;
  auto& worker = workers[index];
  if (!worker.in_flight.empty()) {
    const auto what = fmt::format("{} (pid {}) {}", worker.process->name(), worker.process->pid(), describe_exit(exitcode));
    if (config.on_worker_loss == WorkerLoss::break_pool) {
      break_pool(std::make_exception_ptr(BrokenProcessPool(fmt::format(
          "A process in the process pool was terminated abruptly while the future was running or pending: {}", what))));
      return false;
    }
    // The worker ran its tasks in order and replied after each: the first without a reply was running.
    auto running = worker.in_flight.front();
    worker.in_flight.pop_front();
    running.job->lose(std::make_exception_ptr(ProcessError(fmt::format("pool worker {} while running this task", what))));
    for (auto it = worker.in_flight.rbegin(); it != worker.in_flight.rend(); ++it) pending.push_front(it->job);
    worker.in_flight.clear();
    log_warning(fmt::format("process pool: worker {}; starting another", what));
  } else if (!worker.stopping) {
    log_warning(fmt::format("process pool: worker {} (pid {}) {} while idle; starting another", worker.process->name(),
                 worker.process->pid(), describe_exit(exitcode)));
  }
  const bool replace = !pending.empty() || incoming_count.load(std::memory_order_relaxed) != 0 || still_accepting();
  worker.process->join();
  if (replace) {
    try {
      workers[index] = start_worker();
    } catch (...) {
      break_pool(std::current_exception());
      return false;
    }
  } else {
    workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(index));
  }
  publish_pids();
  return true;
}

bool ProcessPoolCore::State::workers_intact() {
  std::lock_guard lock(mutex);
  return !broken;
}

bool ProcessPoolCore::State::still_accepting() {
  std::lock_guard lock(mutex);
  return accepting;
}

template <class End>
void ProcessPoolCore::State::abandon_jobs(End end) noexcept {
  std::vector<PoolJob*> jobs;
  for (auto& worker : workers)
    for (auto& entry : worker.in_flight) jobs.push_back(entry.job);
  jobs.insert(jobs.end(), pending.begin(), pending.end());
  pending.clear();
  workers.clear();
  publish_pids();  // before any future completes: whoever sees one done sees the workers gone
  for (auto* job : jobs) end(job);
}

void ProcessPoolCore::State::break_pool(std::exception_ptr error) noexcept {
  {
    std::lock_guard lock(mutex);
    accepting = false;
    closing = true;
    if (!broken) broken = error;
    error = broken;
  }
  log_error(fmt::format("process pool is broken: {}", describe_failure(error).message));
  take_incoming();
  stop_all_workers(SIGKILL);
  abandon_jobs([&](PoolJob* job) { job->fail(error); });
}

void ProcessPoolCore::State::terminate_now() noexcept {
  stop_all_workers(SIGTERM);
  abandon_jobs([](PoolJob* job) { job->cancel(); });
}

void ProcessPoolCore::State::stop_all_workers(int signal_number) noexcept {
  for (auto& worker : workers) {
    try {
      signal_number == SIGKILL ? worker.process->kill() : worker.process->terminate();
    } catch (const std::exception& e) {
      log_error(fmt::format("process pool: cannot signal {}: {}", worker.process->name(), e.what()));
    }
  }
  join_workers(terminate_grace, false);
}

void ProcessPoolCore::State::join_workers(Clock::duration grace, bool warn_on_kill) noexcept {
  const auto deadline = Clock::now() + grace;
  for (auto& worker : workers) {
    try {
      if (!worker.process->join(std::max(deadline - Clock::now(), Clock::duration::zero()))) {
        if (warn_on_kill) log_warning(fmt::format("process pool: {} did not exit; killing it", worker.process->name()));
        worker.process->kill();
        worker.process->join();
      }
    } catch (const std::exception& e) {
      log_error(fmt::format("process pool: cannot stop {}: {}", worker.process->name(), e.what()));
    }
  }
}

void ProcessPoolCore::State::stop_workers() noexcept {
  for (auto& worker : workers) {
    try {
      if (!worker.lost) worker.channel.send(PoolTaskBatch{});
    } catch (const std::exception&) {
      // Already gone; the join below sees it.
    }
  }
  join_workers(exit_grace, true);
  workers.clear();
  publish_pids();
}

}  // namespace cohort::detail
