#include "core/runtime/arena.h"

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/runtime/dnnl_adapter.h"
#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

TEST(ArenaTest, ChainReusesMemoryOfDeadBuffers) {
  // a -> b -> c -> d: each buffer lives for two steps, so two slots suffice.
  std::vector<BufferLifetime> chain = {
      {1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  ArenaPlan plan = PlanArena(chain);
  EXPECT_EQ(plan.total_bytes, 2 * 1024u);
  EXPECT_NE(plan.offsets[0], plan.offsets[1]);
  EXPECT_EQ(plan.offsets[0], plan.offsets[2]);
}

TEST(ArenaTest, LiveBuffersNeverOverlapAndOffsetsAreAligned) {
  std::mt19937 rng(7);
  std::vector<BufferLifetime> buffers;
  for (int i = 0; i < 200; ++i) {
    int first = static_cast<int>(rng() % 50);
    buffers.push_back(
        {1 + rng() % 5000, first, first + static_cast<int>(rng() % 10)});
  }
  ArenaPlan plan = PlanArena(buffers);
  size_t sum = 0;
  for (size_t i = 0; i < buffers.size(); ++i) {
    EXPECT_EQ(plan.offsets[i] % 64, 0u);
    EXPECT_LE(plan.offsets[i] + buffers[i].bytes, plan.total_bytes);
    sum += (buffers[i].bytes + 63) / 64 * 64;
    for (size_t j = 0; j < i; ++j) {
      const bool live_together =
          buffers[i].first_step <= buffers[j].last_step &&
          buffers[j].first_step <= buffers[i].last_step;
      const bool overlap =
          plan.offsets[i] < plan.offsets[j] + buffers[j].bytes &&
          plan.offsets[j] < plan.offsets[i] + buffers[i].bytes;
      EXPECT_FALSE(live_together && overlap) << i << " and " << j;
    }
  }
  EXPECT_LT(plan.total_bytes, sum);
}

TEST(ArenaTest, SizesThatCannotAddUpSaturate) {
  constexpr size_t kMax = std::numeric_limits<size_t>::max();
  const ArenaPlan plan =
      PlanArena({{kMax - 10, 0, 1}, {kMax / 2, 1, 2}, {100, 0, 2}});
  EXPECT_EQ(plan.total_bytes, kMax);
  EXPECT_FALSE(AlignedBuffer::Allocate(plan.total_bytes, "arena").ok());
}

TEST(AlignedBufferTest, ZeroedAndAligned) {
  absl::StatusOr<AlignedBuffer> b = AlignedBuffer::Allocate(100, "a test");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->bytes(), 100u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % 64, 0u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(b->data()[i], 0.0f);
  // Zero bytes still yields a usable pointer.
  absl::StatusOr<AlignedBuffer> empty = AlignedBuffer::Allocate(0, "a test");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_NE(empty->data(), nullptr);
}

TEST(AlignedBufferTest, ImpossibleSizesAreResourceExhausted) {
  for (size_t bytes :
       {std::numeric_limits<size_t>::max(),
        std::numeric_limits<size_t>::max() - 10, size_t{1} << 62}) {
    absl::StatusOr<AlignedBuffer> b =
        AlignedBuffer::Allocate(bytes, "the activation arena");
    ASSERT_FALSE(b.ok()) << bytes;
    EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_NE(b.status().message().find("the activation arena"),
              std::string::npos)
        << b.status();
    EXPECT_NE(b.status().message().find(std::to_string(bytes)),
              std::string::npos)
        << b.status();
  }
}

}  // namespace
}  // namespace esb::runtime
