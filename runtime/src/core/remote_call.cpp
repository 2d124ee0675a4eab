// Module-relative function addresses through the dynamic linker's list of loaded modules, and the names
// COHORT_REMOTE gives functions.
#include "cohort/detail/remote_call.hpp"

#include <link.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "cohort/error.hpp"

namespace cohort::detail {
namespace {

/// One search over the loaded modules: either for the module that holds an address, or for a module by
/// name (then `offset` is checked to lie in its executable code).
struct Search {
  std::uintptr_t address = 0;
  const std::string* module = nullptr;
  std::uint64_t offset = 0;
  bool found = false;
  bool in_code = false;
  std::string found_module;
  std::uintptr_t base = 0;
};

bool segment_holds(const dl_phdr_info* info, std::uintptr_t address, bool code_only) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD) continue;
    if (code_only && !(segment.p_flags & PF_X)) continue;
    const std::uintptr_t start = info->dlpi_addr + segment.p_vaddr;
    if (address >= start && address < start + segment.p_memsz) return true;
  }
  return false;
}

int visit(dl_phdr_info* info, std::size_t, void* data) {
  auto& search = *static_cast<Search*>(data);
  const std::string_view name = info->dlpi_name ? info->dlpi_name : "";
  if (search.module) {
    if (name != *search.module) return 0;
    search.found = true;
    search.base = info->dlpi_addr;
    search.in_code = segment_holds(info, info->dlpi_addr + search.offset, true);
    return 1;
  }
  if (!segment_holds(info, search.address, false)) return 0;
  search.found = true;
  search.found_module = std::string(name);
  search.base = info->dlpi_addr;
  return 1;
}

/// The executable's load address and segments, read once: the executable is never unloaded, and most
/// functions a remote call names are in it, so that their lookups skip the walk over the modules (which
/// takes the dynamic linker's lock) on every call.
struct ExecutableImage {
  std::uintptr_t base = 0;
  struct Segment {
    std::uintptr_t start, end;
    bool code;
  };
  std::vector<Segment> segments;

  bool holds(std::uintptr_t address, bool code_only) const noexcept {
    for (const auto& segment : segments)
      if (address >= segment.start && address < segment.end && (segment.code || !code_only)) return true;
    return false;
  }
};

const ExecutableImage& executable() {
  static const ExecutableImage image = [] {
    ExecutableImage found;
    // The first module the dynamic linker lists is the executable.
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) {
          auto& image = *static_cast<ExecutableImage*>(data);
          image.base = info->dlpi_addr;
          for (int i = 0; i < info->dlpi_phnum; ++i) {
            const auto& segment = info->dlpi_phdr[i];
            if (segment.p_type != PT_LOAD) continue;
            const std::uintptr_t start = info->dlpi_addr + segment.p_vaddr;
            image.segments.push_back({start, start + segment.p_memsz, (segment.p_flags & PF_X) != 0});
          }
          return 1;
        },
        &found);
    return found;
  }();
  return image;
}

}  // namespace

FunctionAddress address_of(const void* function) {
  const auto& image = executable();
  if (image.holds(reinterpret_cast<std::uintptr_t>(function), false))
    return FunctionAddress{std::string(), reinterpret_cast<std::uintptr_t>(function) - image.base};
  Search search;
  search.address = reinterpret_cast<std::uintptr_t>(function);
  dl_iterate_phdr(visit, &search);
  if (!search.found)
    throw ProcessError(fmt::format("function at {} is not in any loaded module: it cannot be called in another process",
                                   function));
  return FunctionAddress{std::move(search.found_module), search.address - search.base};
}

const void* resolve(const FunctionAddress& address) {
  if (address.module.empty()) {
    const auto& image = executable();
    if (image.holds(image.base + address.offset, true)) return reinterpret_cast<const void*>(image.base + address.offset);
  }
  Search search;
  search.module = &address.module;
  search.offset = address.offset;
  dl_iterate_phdr(visit, &search);
  const std::string_view module = address.module.empty() ? "the executable" : std::string_view(address.module);
  if (!search.found)
    throw SerializationError(fmt::format("remote call names a function in {}, which is not loaded in this process", module));
  if (!search.in_code)
    throw SerializationError(fmt::format(
        "remote call names offset {:#x} of {}, which is not code here: the processes run different builds", address.offset,
        module));
  return reinterpret_cast<const void*>(search.base + address.offset);
}

namespace {

struct NamedFunction {
  RemoteEntry entry;
  const void* function;
};

struct NameRegistry {
  std::mutex mutex;
  std::map<std::string, NamedFunction, std::less<>> by_name;
  std::map<const void*, std::string> by_address;
};

NameRegistry& names() {
  static auto* instance = new NameRegistry;  // never destroyed: used from static initializers and at exit
  return *instance;
}

}  // namespace

bool register_remote_function(const char* name, RemoteEntry entry, const void* function) {
  auto& r = names();
  std::lock_guard lock(r.mutex);
  const auto [it, added] = r.by_name.try_emplace(name, NamedFunction{entry, function});
  if (!added && it->second.function != function)
    throw std::logic_error(fmt::format("COHORT_REMOTE: the name '{}' is already given to another function", name));
  r.by_address.try_emplace(function, name);
  return true;
}

const std::string* remote_name_of(const void* function) noexcept {
  auto& r = names();
  std::lock_guard lock(r.mutex);
  const auto it = r.by_address.find(function);
  return it == r.by_address.end() ? nullptr : &it->second;  // entries are never erased
}

void invoke(const CallFrame& frame, std::string* result) { invoke(frame, frame.arguments, result); }

void invoke(const CallFrame& frame, std::string_view arguments, std::string* result) {
  if (!frame.name.empty()) {
    NamedFunction named{};
    {
      auto& r = names();
      std::lock_guard lock(r.mutex);
      const auto it = r.by_name.find(frame.name);
      if (it == r.by_name.end())
        throw SerializationError(fmt::format(
            "remote call: no function is named '{}' in this program (COHORT_REMOTE({}) missing in its build?)",
            frame.name, frame.name));
      named = it->second;
    }
    named.entry(named.function, arguments, result);
    return;
  }
  const auto entry = reinterpret_cast<RemoteEntry>(const_cast<void*>(resolve(frame.entry)));
  const void* target = frame.has_target ? resolve(frame.target) : nullptr;
  entry(target, arguments, result);
}

}  // namespace cohort::detail
