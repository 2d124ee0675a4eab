// The class both programs of the remote-object example are built with: served by inventory_server,
// called by inventory_client. Its managed methods are listed once, here, for both.
#pragma once

#include <cohort/cohort.hpp>

#include <map>
#include <stdexcept>
#include <string>

class Inventory {
 public:
  int add(const std::string& item, int count) { return stock_[item] += count; }
  int take(const std::string& item, int count) {
    auto& have = stock_[item];
    if (have < count)
      throw std::out_of_range("only " + std::to_string(have) + " " + item + " left, " + std::to_string(count) + " asked");
    return have -= count;
  }
  int count(const std::string& item) const {
    const auto found = stock_.find(item);
    return found == stock_.end() ? 0 : found->second;
  }
  std::map<std::string, int> all() const { return stock_; }

 private:
  std::map<std::string, int> stock_;
};

COHORT_MANAGED_METHODS(Inventory, &Inventory::add, &Inventory::take, &Inventory::count, &Inventory::all)
