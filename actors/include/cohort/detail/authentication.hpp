// The authkey handshake of a manager's connections: a mutual HMAC-SHA256 challenge with a random nonce,
// as Python's multiprocessing.connection does it since 3.12. Each side proves that it holds the key
// without sending it: the server challenges the client, then the client challenges the server.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "cohort/detail/socket_channel.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

/// `size` random bytes from OpenSSL's generator: a fresh authkey.
std::string random_bytes(std::size_t size);

/// The HMAC-SHA256 of `message` under `key`: 32 bytes.
std::string hmac_sha256(std::string_view key, std::string_view message);

/// Sends a challenge (a fresh random nonce) and checks the peer's answer. On a wrong answer the peer is
/// told so and AuthenticationError is thrown; then the caller closes the connection.
task<void> async_deliver_challenge(SocketChannel& channel, std::string authkey);
/// Answers the peer's challenge; AuthenticationError if the peer rejects the answer (a different key)
/// or does not follow the protocol.
task<void> async_answer_challenge(SocketChannel& channel, std::string authkey);

/// The server's side of a new connection: deliver, then answer.
task<void> async_authenticate_client(SocketChannel& channel, std::string authkey);
/// The client's side after it connected: answer, then deliver.
task<void> async_authenticate_server(SocketChannel& channel, std::string authkey);

}  // namespace cohort::detail
