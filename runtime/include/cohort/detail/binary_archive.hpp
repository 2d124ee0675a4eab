// cereal archives that write into a std::string and read from a bounded view. The byte format is
// cereal's binary archive; the reader checks every length against the bytes that remain, so a corrupt
// container size fails with SerializationError instead of allocating without bound.
#pragma once

#include <cereal/cereal.hpp>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "cohort/error.hpp"

namespace cohort::detail {

class BinaryWriter : public cereal::OutputArchive<BinaryWriter, cereal::AllowEmptyClassElision> {
 public:
  explicit BinaryWriter(std::string& out) : cereal::OutputArchive<BinaryWriter, cereal::AllowEmptyClassElision>(this), out_(out) {}

  void saveBinary(const void* data, std::size_t size) {
    if (size != 0) out_.append(static_cast<const char*>(data), size);
  }

 private:
  std::string& out_;
};

class BinaryReader : public cereal::InputArchive<BinaryReader, cereal::AllowEmptyClassElision> {
 public:
  explicit BinaryReader(std::string_view in)
      : cereal::InputArchive<BinaryReader, cereal::AllowEmptyClassElision>(this), in_(in) {}

  void loadBinary(void* data, std::size_t size) {
    if (size > in_.size()) throw_truncated(size);
    if (size == 0) return;  // an empty vector's data() may be null, which memcpy must not be given
    std::memcpy(data, in_.data(), size);
    in_.remove_prefix(size);
  }

  std::size_t remaining() const noexcept { return in_.size(); }

  /// Rejects a container length that could not possibly fit in the bytes left.
  void check_length(std::uint64_t count) const {
    if (count > in_.size()) throw_bad_length(count);
  }

 private:
  [[noreturn]] void throw_truncated(std::size_t wanted) const;
  [[noreturn]] void throw_bad_length(std::uint64_t count) const;

  std::string_view in_;
};

template <class T>
  requires std::is_arithmetic_v<T>
void CEREAL_SAVE_FUNCTION_NAME(BinaryWriter& ar, const T& t) {
  ar.saveBinary(std::addressof(t), sizeof(t));
}

template <class T>
  requires std::is_arithmetic_v<T>
void CEREAL_LOAD_FUNCTION_NAME(BinaryReader& ar, T& t) {
  ar.loadBinary(std::addressof(t), sizeof(t));
}

template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(BinaryReader, BinaryWriter)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(BinaryWriter& ar, const cereal::SizeTag<T>& t) {
  ar(t.size);
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BinaryReader& ar, cereal::SizeTag<T>& t) {
  ar(t.size);
  // Every element of a non-empty type takes at least one byte, so a count beyond the remaining bytes
  // is corrupt; checking here bounds the resize() that cereal does next.
  ar.check_length(static_cast<std::uint64_t>(t.size));
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(BinaryWriter& ar, const cereal::BinaryData<T>& bd) {
  ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BinaryReader& ar, cereal::BinaryData<T>& bd) {
  ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace cohort::detail

CEREAL_REGISTER_ARCHIVE(cohort::detail::BinaryWriter)
CEREAL_REGISTER_ARCHIVE(cohort::detail::BinaryReader)
CEREAL_SETUP_ARCHIVE_TRAITS(cohort::detail::BinaryReader, cohort::detail::BinaryWriter)
