// Python's first multiprocessing example: the parent and a child each say who they are.
//   def info(title): print(title, os.getppid(), os.getpid())
//   p = Process(target=f, args=('bob',)); p.start(); p.join()
#include <cohort/cohort.hpp>

#include <cstdio>
#include <string>

void info(const std::string& title) {
  const auto parent = cohort::parent_process();
  std::printf("%s\n  process name: %s\n  parent process: %d\n  process id: %d\n", title.c_str(),
              cohort::current_process().name.c_str(), parent ? parent->pid : 0, cohort::current_process().pid);
}

void greet(const std::string& name) {
  info("function greet");
  std::printf("hello %s\n", name.c_str());
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  info("main line");
  cohort::Process p(greet, std::string("bob"));
  p.start();
  std::printf("started child %d with the %s start method\n", p.pid(), cohort::to_string(p.start_method()));
  p.join();
  std::printf("child exit code: %d\n", *p.exitcode());
}
