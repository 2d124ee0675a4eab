// Messages that carry descriptors over a Unix-domain socket (SCM_RIGHTS): how a child receives the
// pipes and shared memory among its arguments, and how the fork server hands out pidfds.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cohort/detail/unique_fd.hpp"

namespace cohort::detail {

/// The kernel's limit of descriptors per message (SCM_MAX_FD).
inline constexpr std::size_t max_fds_per_message = 253;

/// Sends `bytes` with `fds` attached: a 16-byte header that carries the descriptors, then the bytes.
/// On a SOCK_SEQPACKET socket the bytes must be empty (one record per message).
void send_with_fds(int socket, std::string_view bytes, const std::vector<UniqueFd>& fds);

/// Receives one message sent by send_with_fds, blocking; its descriptors (close-on-exec) are appended
/// to `fds`. EOFError if the peer closed the socket before a whole message arrived.
std::string recv_with_fds(int socket, std::vector<UniqueFd>& fds);

}  // namespace cohort::detail
