// The identities a Redis queue's clients and workers carry.
#include "redis/redis_protocol.hpp"

#include "redis/redis_connection.hpp"

#include <fmt/format.h>

#include <elf.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>

namespace cohort::detail::redis {

namespace {

/// The GNU build-id note of the executable (the first module dl_iterate_phdr lists), as hex.
std::string executable_build_id() {
  std::string id;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) -> int {
        auto& found = *static_cast<std::string*>(out);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& header = info->dlpi_phdr[i];
          if (header.p_type != PT_NOTE) continue;
          const auto* at = reinterpret_cast<const unsigned char*>(info->dlpi_addr + header.p_vaddr);
          const auto* end = at + header.p_memsz;
          while (at + sizeof(ElfW(Nhdr)) <= end) {
            ElfW(Nhdr) note;
            std::memcpy(&note, at, sizeof note);
            const auto* name = at + sizeof note;
            const auto* desc = name + ((note.n_namesz + 3) & ~3u);
            if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0 &&
                desc + note.n_descsz <= end) {
              for (std::size_t b = 0; b < note.n_descsz; ++b) found += fmt::format("{:02x}", desc[b]);
              return 1;
            }
            at = desc + ((note.n_descsz + 3) & ~3u);
          }
        }
        return 1;  // only the executable
      },
      &id);
  return id;
}

}  // namespace

task<void> make_queue(RedisConnection& connection, std::string_view queue) {
  std::vector<std::string> command{"XGROUP", "CREATE", tasks_key(queue), std::string(group), "0", "MKSTREAM"};
  const auto created = co_await connection.call(std::move(command));
  if (created.is_error() && !reply_text(*created).starts_with("BUSYGROUP"))
    throw Error(fmt::format("Redis at {}: cannot make the queue '{}': {}", connection.address().to_string(), queue,
                            reply_text(*created)));
}

const std::string& program_build() {
  static const std::string build = [] {
    if (auto id = executable_build_id(); !id.empty()) return "build-id:" + id;
    struct stat status {};
    if (::stat("/proc/self/exe", &status) == 0)
      return fmt::format("exe:{}:{}.{}", status.st_size, status.st_mtim.tv_sec, status.st_mtim.tv_nsec);
    return std::string("unknown");
  }();
  return build;
}

std::string process_identity(std::string_view role) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "host");
  std::random_device random;
  return fmt::format("{}:{}:{}:{:08x}", role, host, ::getpid(), random());
}

}  // namespace cohort::detail::redis
