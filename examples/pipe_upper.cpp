// A worker at the other end of a Pipe upper-cases what it receives and sends it back, until it gets
// an empty message.
#include <cohort/cohort.hpp>

#include <cctype>
#include <cstdio>
#include <string>

void upper_caser(cohort::Connection& conn) {
  for (;;) {
    auto text = conn.recv<std::string>();
    if (text.empty()) break;
    for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    conn.send(text);
  }
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  auto [parent_end, child_end] = cohort::Pipe();
  cohort::Process worker(upper_caser, std::move(child_end));
  worker.start();
  child_end.close();  // moved into the Process already; the child holds its own end
  for (std::string message : {"hello", "from the parent", "over a pipe"}) {
    parent_end.send(message);
    std::printf("sent '%s', got back '%s'\n", message.c_str(), parent_end.recv<std::string>().c_str());
  }
  parent_end.send(std::string());
  worker.join();
  std::printf("worker exit code: %d\n", *worker.exitcode());
}
