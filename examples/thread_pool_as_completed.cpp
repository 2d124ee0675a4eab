// Shows cohort::as_completed over a ThreadPoolExecutor: jobs are reported the moment each one finishes,
// so the slowest job submitted first does not hold back the rest (Python: concurrent.futures.as_completed).
#include <cohort/cohort.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

struct Job {
  int id;
  std::chrono::milliseconds duration;
};

// Stands in for blocking work (a download, a database query): it holds its thread the whole time.
int run_job(Job job) {
  std::this_thread::sleep_for(job.duration);
  return job.id;
}

long long ms_since(steady::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
}

std::string joined(const std::vector<int>& ids) {
  std::string out;
  for (const int id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);

  // 150 ms apart, so that even a loaded machine cannot swap two neighbours.
  const std::vector<Job> jobs = {{0, 450ms}, {1, 150ms}, {2, 600ms}, {3, 300ms}};
  // One thread per job: all of them sleep at the same time, and the order they end in is set by their
  // durations alone.
  cohort::ThreadPoolExecutor pool(jobs.size());

  const auto start = steady::now();
  std::vector<cohort::Future<int>> futures;
  std::vector<int> submission_order;
  for (const Job& job : jobs) {
    futures.push_back(pool.submit(run_job, job));
    submission_order.push_back(job.id);
    std::cout << "submitted job " << job.id << " (runs " << job.duration.count() << " ms)" << std::endl;
  }

  std::vector<int> completion_order;
  // The time limit counts from this call; past it the loop throws cohort::TimeoutError instead of hanging.
  for (const auto& future : cohort::as_completed(futures, 10s)) {
    const int id = future.get();  // already done: get() returns at once
    completion_order.push_back(id);
    std::cout << "finished job " << id << " at " << ms_since(start) << " ms" << std::endl;
  }
  const auto total = ms_since(start);

  std::cout << "submission order: " << joined(submission_order) << std::endl;
  std::cout << "completion order: " << joined(completion_order) << std::endl;
  // About 600 ms, the longest job, rather than the 1500 ms the jobs add up to.
  std::cout << "all " << jobs.size() << " jobs done in " << total << " ms" << std::endl;
}
