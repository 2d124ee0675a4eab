#include "cohort/codec.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

struct Point {
  int x = 0;
  double y = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, y, label);
  }
  bool operator==(const Point&) const = default;
};

cohort::detail::FrameHeader header_of(const std::string& frame) {
  cohort::detail::FrameHeader header;
  std::memcpy(&header, frame.data(), sizeof header);
  return header;
}

std::string with_header(std::string frame, const cohort::detail::FrameHeader& header) {
  std::memcpy(frame.data(), &header, sizeof header);
  return frame;
}

TEST(Codec, RoundTripsStandardAndUserTypes) {
  EXPECT_EQ(cohort::loads<int>(cohort::dumps(42)), 42);
  EXPECT_EQ(cohort::loads<std::string>(cohort::dumps(std::string("héllo"))), "héllo");
  const std::map<std::string, std::vector<double>> nested{{"a", {1.5, 2.5}}, {"b", {}}};
  EXPECT_EQ((cohort::loads<std::map<std::string, std::vector<double>>>(cohort::dumps(nested))), nested);
  const Point p{3, 4.5, "p"};
  EXPECT_EQ(cohort::loads<Point>(cohort::dumps(p)), p);
  const std::tuple<int, std::optional<std::string>> t{7, std::nullopt};
  EXPECT_EQ((cohort::loads<std::tuple<int, std::optional<std::string>>>(cohort::dumps(t))), t);
}

TEST(Codec, ReadingAnotherTypeThanWasWrittenNamesBothTypes) {
  const auto frame = cohort::dumps(std::vector<int>{1, 2, 3});
  try {
    cohort::loads<std::string>(frame);
    FAIL() << "loads<std::string> of a vector<int> frame succeeded";
  } catch (const cohort::SerializationError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("vector<int"), std::string::npos) << message;
    EXPECT_NE(message.find("basic_string"), std::string::npos) << message;
  }
}

TEST(Codec, TruncatedFrameIsRejected) {
  const auto frame = cohort::dumps(std::string(100, 'x'));
  for (std::size_t size : {std::size_t{0}, std::size_t{10}, sizeof(cohort::detail::FrameHeader), frame.size() - 1})
    EXPECT_THROW(cohort::loads<std::string>(std::string_view(frame).substr(0, size)), cohort::SerializationError);
}

TEST(Codec, HugeAnnouncedLengthIsRejectedWithoutAllocating) {
  auto header = header_of(cohort::dumps(1));
  header.payload_size = std::uint64_t{1} << 62;
  EXPECT_THROW(cohort::detail::frame_body_size(header), cohort::SerializationError);
  header = header_of(cohort::dumps(1));
  header.name_size = 1u << 30;
  EXPECT_THROW(cohort::detail::frame_body_size(header), cohort::SerializationError);
}

TEST(Codec, CorruptContainerSizeInsidePayloadIsRejected) {
  auto frame = cohort::dumps(std::vector<int>{1, 2, 3});
  const auto header = header_of(frame);
  // The payload starts with the vector's 64-bit element count.
  const std::uint64_t absurd = std::uint64_t{1} << 60;
  std::memcpy(frame.data() + sizeof header + header.name_size, &absurd, sizeof absurd);
  EXPECT_THROW(cohort::loads<std::vector<int>>(frame), cohort::SerializationError);
  auto strings = cohort::dumps(std::vector<std::string>{"a", "b"});
  const auto string_header = header_of(strings);
  std::memcpy(strings.data() + sizeof string_header + string_header.name_size, &absurd, sizeof absurd);
  EXPECT_THROW(cohort::loads<std::vector<std::string>>(strings), cohort::SerializationError);
}

TEST(Codec, RandomGarbageNeverCrashes) {
  std::mt19937 rng(12345);
  const auto valid = cohort::dumps(std::map<int, std::string>{{1, "one"}, {2, "two"}});
  for (int round = 0; round < 2000; ++round) {
    std::string mutated = valid;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i) mutated[rng() % mutated.size()] = static_cast<char>(rng());
    try {
      (void)cohort::loads<std::map<int, std::string>>(mutated);
    } catch (const cohort::SerializationError&) {
    }
  }
  for (int round = 0; round < 500; ++round) {
    std::string garbage(rng() % 200, '\0');
    for (auto& c : garbage) c = static_cast<char>(rng());
    EXPECT_THROW(cohort::loads<std::vector<std::string>>(garbage), cohort::SerializationError);
  }
}

TEST(Codec, TrailingBytesAreAnError) {
  auto frame = cohort::dumps(std::int64_t{5});
  auto header = header_of(frame);
  frame += "junk";  // a frame whose payload is longer than the value it holds
  header.payload_size += 4;
  EXPECT_THROW(cohort::loads<std::int64_t>(with_header(frame, header)), cohort::SerializationError);
}

TEST(Codec, MessagesAboveTheLimitAreRefusedOnBothSides) {
  const auto previous = cohort::max_message_size();
  const auto big = cohort::dumps(std::string(1000, 'x'));
  cohort::set_max_message_size(100);
  EXPECT_THROW(cohort::dumps(std::string(1000, 'x')), cohort::SerializationError);
  EXPECT_THROW(cohort::loads<std::string>(big), cohort::SerializationError);
  EXPECT_EQ(cohort::loads<std::string>(cohort::dumps(std::string(10, 'y'))), std::string(10, 'y'));
  cohort::set_max_message_size(previous);
  EXPECT_THROW(cohort::set_max_message_size(0), std::invalid_argument);
}

TEST(Codec, DumpToAppendsConsecutiveFrames) {
  std::string buffer;
  cohort::dump_to(buffer, 1);
  const auto first = buffer.size();
  cohort::dump_to(buffer, std::string("two"));
  EXPECT_EQ(cohort::loads<int>(std::string_view(buffer).substr(0, first)), 1);
  EXPECT_EQ(cohort::loads<std::string>(std::string_view(buffer).substr(first)), "two");
}

}  // namespace
