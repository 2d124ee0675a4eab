// SharedMemory: named segments in /dev/shm, their owners, and their crossing to children.
#include "cohort/shared_memory.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "cohort/detail/binary_archive.hpp"
#include "cohort/detail/fd_transfer.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/error.hpp"
#include "cohort/event.hpp"
#include "cohort/process.hpp"
#include "resource_check.hpp"

namespace {

using namespace std::chrono_literals;

using cohort_test::entries_in;

bool segment_exists(const std::string& name) { return std::filesystem::exists("/dev/shm/" + name); }

std::string unique_name(const char* what) { return "cohort_test_" + std::to_string(::getpid()) + "_" + what; }

void check_in_child(bool ok) {
  if (!ok) std::_Exit(7);
}

/// Every test must leave this process's descriptors as it found them, and no segment it made in /dev/shm.
/// (Only its own segments are checked: ctest runs other tests at the same time, which create and remove
/// theirs.)
class SharedMemoryTest : public testing::Test {
 protected:
  void SetUp() override { fds_ = entries_in("/proc/self/fd"); }
  void TearDown() override {
    EXPECT_EQ(entries_in("/proc/self/fd"), fds_);
    for (const auto& name : entries_in("/dev/shm"))
      EXPECT_NE(name.rfind(unique_name(""), 0), 0u) << name << " was left";
    for (const auto& name : generated_) EXPECT_FALSE(segment_exists(name)) << name << " was left";
  }
  /// A segment with a generated name that the test makes: TearDown checks that it is gone.
  void remember(const cohort::SharedMemory& shm) { generated_.push_back(shm.name()); }

 private:
  std::set<std::string> fds_;
  std::vector<std::string> generated_;
};

TEST_F(SharedMemoryTest, CreatedWithAGeneratedNameAndRemovedByTheLastClose) {
  cohort::SharedMemory shm("", true, 100);
  remember(shm);
  EXPECT_EQ(shm.name().rfind("psm_", 0), 0u) << shm.name();
  EXPECT_EQ(shm.name().size(), 12u);
  EXPECT_EQ(shm.size(), 100u);
  ASSERT_EQ(shm.buf().size(), 100u);
  EXPECT_TRUE(std::all_of(shm.buf().begin(), shm.buf().end(), [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_TRUE(segment_exists(shm.name()));
  shm.buf()[99] = std::byte{42};
  shm.close();
  EXPECT_FALSE(segment_exists(shm.name()));
  EXPECT_THROW(shm.buf(), cohort::Error);
  shm.close();   // twice is harmless
  shm.unlink();  // so is unlink after the name is gone, as in Python's close(); unlink()
}

TEST_F(SharedMemoryTest, TheLastOfSeveralOwnersRemovesTheName) {
  const auto name = unique_name("owners");
  auto creator = std::make_unique<cohort::SharedMemory>(name, true, 4096);
  std::memcpy(creator->buf().data(), "hello", 5);
  cohort::SharedMemory opener(name);  // "/name" would do as well
  EXPECT_EQ(opener.size(), 4096u);
  EXPECT_EQ(std::memcmp(opener.buf().data(), "hello", 5), 0);
  auto copy = opener;  // copies share one access: not another owner
  creator.reset();     // the destructor closes
  EXPECT_TRUE(segment_exists(name));
  EXPECT_EQ(std::memcmp(copy.buf().data(), "hello", 5), 0);
  copy.close();
  EXPECT_FALSE(segment_exists(name));
  EXPECT_THROW(opener.buf(), cohort::Error);
}

TEST_F(SharedMemoryTest, UnlinkRemovesTheNameAtOnceAndTheMemoryStays) {
  const auto name = unique_name("unlink");
  cohort::SharedMemory creator(name, true, 64);
  cohort::SharedMemory opener(name);
  creator.unlink();
  EXPECT_FALSE(segment_exists(name));
  creator.buf()[0] = std::byte{7};
  EXPECT_EQ(opener.buf()[0], std::byte{7});
  // The name is free for a new segment, which the old one's owners must not remove when they close.
  cohort::SharedMemory successor(name, true, 8);
  creator.close();
  opener.close();
  EXPECT_TRUE(segment_exists(name));
  successor.close();
  EXPECT_FALSE(segment_exists(name));
}

TEST_F(SharedMemoryTest, BadRequestsGiveClearErrors) {
  const auto name = unique_name("errors");
  EXPECT_THROW(cohort::SharedMemory(name, true, 0), std::invalid_argument);
  EXPECT_THROW(cohort::SharedMemory(""), std::invalid_argument);
  EXPECT_THROW(cohort::SharedMemory("a/b", true, 8), std::invalid_argument);
  try {
    cohort::SharedMemory missing(name);
    FAIL();
  } catch (const cohort::Error& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
  cohort::SharedMemory first(name, true, 8);
  EXPECT_THROW(cohort::SharedMemory(name, true, 8), cohort::Error);
  EXPECT_EQ(first.size(), 8u);  // the failed creation left the existing segment alone
}

TEST_F(SharedMemoryTest, UntrackedSegmentsStayUntilUnlinked) {
  const auto name = unique_name("untracked");
  {
    cohort::SharedMemory kept(name, true, 16, /*track=*/false);
    kept.buf()[3] = std::byte{3};
  }
  ASSERT_TRUE(segment_exists(name));
  {
    cohort::SharedMemory again(name);  // tracked, but the segment was made to stay
    EXPECT_EQ(again.buf()[3], std::byte{3});
  }
  ASSERT_TRUE(segment_exists(name));
  cohort::SharedMemory last(name);
  last.unlink();
  EXPECT_FALSE(segment_exists(name));
}

TEST_F(SharedMemoryTest, OpensSegmentsOtherProgramsMade) {
  const auto name = unique_name("foreign");
  const int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 5000), 0);
  ASSERT_EQ(::pwrite(fd, "abc", 3, 0), 3);
  ::close(fd);
  {
    cohort::SharedMemory foreign(name);
    EXPECT_EQ(foreign.size(), 5000u);
    EXPECT_EQ(std::memcmp(foreign.buf().data(), "abc", 3), 0);
  }
  EXPECT_TRUE(segment_exists(name));  // not ours to remove on close
  cohort::SharedMemory(name).unlink();
  EXPECT_FALSE(segment_exists(name));
}

TEST_F(SharedMemoryTest, ItsBytesStartAtOffsetZeroForOtherPrograms) {
  cohort::SharedMemory shm("", true, 10);
  remember(shm);
  std::memcpy(shm.buf().data(), "0123456789", 10);
  const int fd = ::shm_open(("/" + shm.name()).c_str(), O_RDONLY, 0);
  ASSERT_GE(fd, 0);
  char seen[10];
  EXPECT_EQ(::pread(fd, seen, 10, 0), 10);
  ::close(fd);
  EXPECT_EQ(std::memcmp(seen, "0123456789", 10), 0);
}

void fill_segment(cohort::SharedMemory shm, unsigned char value) {
  check_in_child(shm.size() == 1000);
  for (auto& b : shm.buf()) b = std::byte{value};
}

TEST_F(SharedMemoryTest, PassedToAChildWhichWritesIntoIt) {
  cohort::SharedMemory shm("", true, 1000);
  remember(shm);
  cohort::Process child(fill_segment, shm, static_cast<unsigned char>(0xab));
  child.start();
  ASSERT_TRUE(child.join(30s));
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_TRUE(std::all_of(shm.buf().begin(), shm.buf().end(), [](std::byte b) { return b == std::byte{0xab}; }));
  EXPECT_TRUE(segment_exists(shm.name()));  // the child was no owner: its end removed nothing
}

void open_and_die(std::string name, cohort::Event opened, bool killed) {
  cohort::SharedMemory shm(name);  // an owner now
  shm.buf()[0] = std::byte{1};
  opened.set();
  if (!killed) ::_exit(0);  // ends without closing
  for (;;) ::pause();
}

TEST_F(SharedMemoryTest, AnOwnerThatDiedNoLongerKeepsTheName) {
  for (bool killed : {false, true}) {
    const auto name = unique_name(killed ? "killed" : "exited");
    cohort::SharedMemory shm(name, true, 32);
    cohort::Event opened;
    cohort::Process child(open_and_die, name, opened, killed);
    child.start();
    ASSERT_TRUE(opened.wait(30s));
    if (killed) child.kill();
    ASSERT_TRUE(child.join(30s));
    EXPECT_EQ(shm.buf()[0], std::byte{1});
    shm.close();  // the last live owner
    EXPECT_FALSE(segment_exists(name)) << (killed ? "killed" : "exited");
  }
}

void close_second(std::string name, cohort::Event opened, cohort::Event creator_closed) {
  cohort::SharedMemory shm(name);
  opened.set();
  check_in_child(creator_closed.wait(30s));
  check_in_child(std::filesystem::exists("/dev/shm/" + name));  // still named: this process owns it
  shm.close();
  check_in_child(!std::filesystem::exists("/dev/shm/" + name));
}

TEST_F(SharedMemoryTest, AnOwnerInAnotherProcessKeepsItUntilItCloses) {
  const auto name = unique_name("other_owner");
  cohort::Event opened;
  cohort::Event creator_closed;
  cohort::SharedMemory shm(name, true, 32);
  cohort::Process child(close_second, name, opened, creator_closed);
  child.start();
  ASSERT_TRUE(opened.wait(30s));
  shm.close();
  EXPECT_TRUE(segment_exists(name));
  creator_closed.set();
  ASSERT_TRUE(child.join(30s));
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_FALSE(segment_exists(name));
}

TEST_F(SharedMemoryTest, SerializedRoundTripSharesTheBytes) {
  cohort::SharedMemory shm("", true, 16);
  remember(shm);
  std::vector<cohort::detail::UniqueFd> fds;
  std::string bytes;
  {
    cohort::detail::FdTransferScope scope(fds);
    cohort::detail::BinaryWriter archive(bytes);
    archive(shm);
  }
  {
    cohort::detail::FdTransferScope scope(fds);
    auto copy = cohort::detail::construct_for_loading<cohort::SharedMemory>();
    cohort::detail::BinaryReader archive(bytes);
    archive(*copy);
    EXPECT_EQ(copy->name(), shm.name());
    EXPECT_EQ(copy->size(), 16u);
    copy->buf()[5] = std::byte{5};
    EXPECT_EQ(shm.buf()[5], std::byte{5});
  }
  fds.clear();
  EXPECT_TRUE(segment_exists(shm.name()));  // the copy was no owner
  shm.close();
  std::string unused;
  cohort::detail::BinaryWriter archive(unused);
  EXPECT_THROW(archive(shm), cohort::SerializationError);  // a closed segment cannot cross
}

}  // namespace
