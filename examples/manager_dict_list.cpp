// The Manager example of Python's documentation: a dict and a list in a server process, changed by a
// child process that got their proxies as arguments, then printed by the parent.
#include <cohort/cohort.hpp>

#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

void f(cohort::Proxy<cohort::managed::Dict<std::string, std::string>> d, cohort::Proxy<cohort::managed::List<int>> l) {
  d["1"] = "1";
  d["2"] = "two";
  d["0.25"] = "none";
  l.reverse();
}

int main() {
  cohort::Manager manager;
  auto d = manager.dict<std::string, std::string>();
  std::vector<int> numbers(10);
  std::iota(numbers.begin(), numbers.end(), 0);
  auto l = manager.list<int>(numbers);

  cohort::Process p(&f, d, l);
  p.start();
  p.join();

  std::printf("{");
  const char* separator = "";
  for (const auto& [key, value] : d.items()) {
    std::printf("%s'%s': '%s'", separator, key.c_str(), value.c_str());
    separator = ", ";
  }
  std::printf("}\n[");
  separator = "";
  for (const int n : l.to_vector()) {
    std::printf("%s%d", separator, n);
    separator = ", ";
  }
  std::printf("]\n");
  return 0;
}
