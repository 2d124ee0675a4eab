// The receiving end of a stream of frames (a 4-byte little-endian length, then that many bytes): what
// was read from the socket and not yet taken. A small frame and its length usually come in one read, so
// the socket is read in blocks of up to 64 KiB and frames are cut out of the block; only the rest of a
// long frame is read straight into its message. The coroutine side (SocketChannel) and a thread's
// blocking side (DirectManagerConnection) differ only in how they read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace cohort::detail {

class FrameBuffer {
 public:
  static constexpr std::size_t header_size = 4;
  static constexpr std::size_t capacity = 64 * 1024;

  std::size_t buffered() const noexcept { return end_ - begin_; }

  /// The space behind what is buffered (which moves to the front first): where the next read goes,
  /// then filled() with how much it read.
  std::span<char> room() {
    if (!data_) data_.reset(new char[capacity]);
    if (begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, buffered());
      end_ -= begin_;
      begin_ = 0;
    }
    return {data_.get() + end_, capacity - end_};
  }
  void filled(std::size_t bytes) noexcept { end_ += bytes; }

  /// The length the next frame announces, once its header is here.
  std::optional<std::size_t> next_length() const noexcept {
    if (buffered() < header_size) return std::nullopt;
    const auto* header = reinterpret_cast<const unsigned char*>(data_.get() + begin_);
    return std::size_t{header[0]} | std::size_t{header[1]} << 8 | std::size_t{header[2]} << 16 |
           std::size_t{header[3]} << 24;
  }

  /// Takes the next frame's header and what is here of its `length` bytes: the whole message, or its
  /// start, behind which the caller reads the rest.
  std::string take(std::size_t length) {
    begin_ += header_size;
    const std::size_t have = std::min(buffered(), length);
    std::string bytes(data_.get() + begin_, have);
    begin_ += have;
    return bytes;
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace cohort::detail
