// The default executor of to_thread.
#include "cohort/run_in_executor.hpp"

namespace cohort::detail {

ThreadPoolExecutor& default_thread_pool() {
  // Function-local static: created on first use, joined at exit after the work already queued ran.
  static ThreadPoolExecutor pool(ThreadPoolOptions{.thread_name_prefix = "asyncio"});
  return pool;
}

}  // namespace cohort::detail
