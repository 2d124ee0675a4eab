// Python's multiprocessing docs, "Synchronization between processes": ten processes print a line each
// and a shared Lock keeps every line whole. Each line is written in three pieces, as a slow writer would
// produce it; without the lock, pieces of different processes would interleave.
#include <cohort/cohort.hpp>

#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

void write_piece(const std::string& piece) { (void)!::write(STDOUT_FILENO, piece.data(), piece.size()); }

void f(cohort::Lock l, int i) {
  std::lock_guard hold(l);  // Python: with l:
  write_piece("hello ");
  std::this_thread::sleep_for(2ms);
  write_piece("world ");
  std::this_thread::sleep_for(2ms);
  write_piece(std::to_string(i) + "\n");
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::Lock lock;
  std::vector<std::unique_ptr<cohort::Process>> processes;
  for (int num = 0; num < 10; ++num) {
    processes.push_back(std::make_unique<cohort::Process>(f, lock, num));
    processes.back()->start();
  }
  for (auto& p : processes) p->join();
  write_piece("all " + std::to_string(processes.size()) + " processes done\n");
}
