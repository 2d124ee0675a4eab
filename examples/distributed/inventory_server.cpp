// Serves one Inventory at a TCP address for programs on other machines (here, loopback), until SIGTERM.
//
//   inventory_server <file to write the address to>
#include "inventory.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: inventory_server <address file>\n");
    return 2;
  }
  const std::filesystem::path address_file = argv[1];
  cohort::BaseManager server({.address = cohort::Address::tcp("127.0.0.1", 0), .authkey = "inventory-key"});
  server.register_type<Inventory>("inventory");
  server.serve_forever([&](const cohort::Address& address) {
    // Written whole, then renamed: a client never reads half an address.
    const auto partial = address_file.string() + ".partial";
    std::ofstream(partial) << address.host() << ' ' << address.port() << '\n';
    std::filesystem::rename(partial, address_file);
    std::printf("server: serving the inventory at %s\n", address.to_string().c_str());
    std::fflush(stdout);
  });
  std::printf("server: stopped\n");
  return 0;
}
