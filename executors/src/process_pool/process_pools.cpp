// ProcessPoolExecutor's and Pool's choices over the shared core: how many workers, their names, and what
// a worker's death does.
#include <stdexcept>
#include <string>

#include "cohort/pool.hpp"
#include "cohort/process_pool_executor.hpp"

namespace cohort {

namespace {

/// Python's names: ForkPoolWorker-1, SpawnPoolWorker-2, ForkServerPoolWorker-3.
std::string worker_prefix(StartMethod method) {
  switch (method) {
    case StartMethod::fork: return "ForkPoolWorker";
    case StartMethod::spawn: return "SpawnPoolWorker";
    case StartMethod::forkserver: return "ForkServerPoolWorker";
  }
  return "PoolWorker";
}

detail::ProcessPoolConfig make_config(std::size_t workers, std::optional<StartMethod> method, void (*initializer)(),
                                      std::size_t max_tasks_per_child, detail::WorkerLoss on_loss) {
  detail::ProcessPoolConfig config;
  config.workers = workers == 0 ? static_cast<std::size_t>(cpu_count()) : workers;
  config.start_method = method.value_or(get_start_method());
  if (initializer) config.initializer = detail::make_call(initializer);
  config.max_tasks_per_child = max_tasks_per_child;
  config.on_worker_loss = on_loss;
  config.name_prefix = worker_prefix(config.start_method);
  return config;
}

detail::ProcessPoolConfig pool_config(const PoolOptions& options) {
  auto config = make_config(options.processes, options.start_method, options.initializer, options.max_tasks_per_child,
                            detail::WorkerLoss::replace_worker);
  config.closed_message = "Pool not running";
  return config;
}

}  // namespace

ProcessPoolExecutor::ProcessPoolExecutor(ProcessPoolOptions options)
    : core_(make_config(options.max_workers, options.start_method, options.initializer, options.max_tasks_per_child,
                        detail::WorkerLoss::break_pool)) {}

Pool::Pool(PoolOptions options) : core_(pool_config(options)) {}

Pool::~Pool() { core_.terminate(); }

void Pool::join() {
  if (core_.accepting()) throw std::logic_error("Pool.join: the pool is still running; close() or terminate() it first");
  core_.join();
}

}  // namespace cohort
