// A producer/consumer pipeline of actors: reader -> parsers -> writer, each mailbox bounded. The writer
// is the slow stage; the stages before it wait for room (async_tell) instead of queueing without end,
// so the producer slows to the writer's pace and memory stays flat.
#include <cohort/cohort.hpp>

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

/// Resident memory of this process, in KiB (Linux).
long resident_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0;
  long resident = 0;
  statm >> pages >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

class Writer {
 public:
  cohort::task<void> write(std::string record) {
    co_await cohort::sleep(20us);  // the slow stage: a disk, a socket, a database
    bytes_ += static_cast<long>(record.size());
    ++records_;
  }
  long records() const { return records_; }
  long bytes() const { return bytes_; }

 private:
  long records_ = 0;
  long bytes_ = 0;
};

class Parser {
 public:
  explicit Parser(cohort::ActorRef<Writer> writer) : writer_(std::move(writer)) {}
  cohort::task<void> parse(long n) {
    // A record of 1 KiB per input; waits while the writer's mailbox is full.
    co_await writer_.async_tell(&Writer::write, std::string(1024, static_cast<char>('a' + n % 26)));
  }

 private:
  cohort::ActorRef<Writer> writer_;
};

cohort::task<void> main_task(long inputs) {
  constexpr std::size_t mailbox = 64;
  auto writer = cohort::spawn_actor<Writer>({.name = "writer", .mailbox_size = mailbox});
  std::vector<cohort::ActorRef<Parser>> parsers;
  for (int i = 0; i < 4; ++i) parsers.push_back(cohort::spawn_actor<Parser>({.mailbox_size = mailbox}, writer));

  const auto start = std::chrono::steady_clock::now();
  long quarter_kib = 0;
  for (long n = 0; n < inputs; ++n) {
    co_await parsers[static_cast<std::size_t>(n) % parsers.size()].async_tell(&Parser::parse, n);  // the reader
    if (n == inputs / 4) quarter_kib = resident_kib();
  }
  for (auto& parser : parsers) co_await parser.stop();  // each finishes what it has first
  const long written = co_await writer.ask(&Writer::records);
  co_await writer.stop();
  const long end_kib = resident_kib();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::cout << "records written: " << written << " of " << inputs << "\n";
  std::cout << "the reader kept the writer's pace: " << static_cast<long>(inputs / seconds) << " records/s\n";
  std::cout << "resident memory from a quarter of the run to its end: " << quarter_kib / 1024 << " MiB -> "
            << end_kib / 1024 << " MiB (" << (end_kib - quarter_kib < 16 * 1024 ? "flat" : "growing") << ")\n";
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::run(main_task(argc > 1 ? std::stol(argv[1]) : 40'000));
}
