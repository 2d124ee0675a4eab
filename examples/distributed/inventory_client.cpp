// Calls an Inventory served by another program, by name, through a proxy with an actor's surface:
// call (a Future, from any thread), ask (co_await, in a coroutine) and tell. Starts the server itself
// (the program given) so that the example runs alone; on two machines, start it there.
//
//   inventory_client <path of inventory_server>
#include "inventory.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: inventory_client <path of inventory_server>\n");
    return 2;
  }
  const auto address_file =
      std::filesystem::temp_directory_path() / ("cohort-inventory-" + std::to_string(::getpid()) + ".address");
  cohort::subprocess::Popen server({argv[1], address_file.string()});
  for (int tries = 0; tries < 1000 && !std::filesystem::exists(address_file); ++tries)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::string host;
  int port = 0;
  std::ifstream(address_file) >> host >> port;
  std::filesystem::remove(address_file);

  cohort::BaseManager manager({.address = cohort::Address::tcp(host, static_cast<std::uint16_t>(port)),
                               .authkey = "inventory-key"});
  manager.connect();
  auto inventory = manager.get<Inventory>("inventory");

  inventory.call(&Inventory::add, std::string("apples"), 10).get();
  inventory.tell(&Inventory::add, std::string("pears"), 4);
  std::printf("client: call  -> %d apples\n", inventory.call(&Inventory::count, std::string("apples")).get());

  cohort::Runtime runtime(1);
  const int left = runtime.run([](cohort::Proxy<Inventory> remote) -> cohort::task<int> {
    co_return co_await remote.ask(&Inventory::take, std::string("apples"), 3);
  }(inventory));
  std::printf("client: ask   -> %d apples left after taking 3\n", left);

  try {
    inventory.call(&Inventory::take, std::string("pears"), 9).get();
  } catch (const std::out_of_range& e) {
    std::printf("client: the server refused: %s\n", e.what());
  }
  for (const auto& [item, count] : inventory.call(&Inventory::all).get()) std::printf("client: %s: %d\n", item.c_str(), count);

  server.terminate();
  std::printf("client: the server exited with %d\n", server.wait());
  try {
    inventory.call(&Inventory::count, std::string("apples")).get();
  } catch (const cohort::ActorDeadError&) {
    std::printf("client: after the server is gone: ActorDeadError\n");
  }
  return 0;
}
