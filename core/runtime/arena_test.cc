#include "core/runtime/arena.h"

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

TEST(ArenaTest, ChainReusesMemoryOfDeadBuffers) {
  // a -> b -> c -> d: each buffer lives for two steps, so two slots suffice.
  std::vector<BufferLifetime> chain = {
      {1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  ArenaPlan plan = PlanArena(chain).value();
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
  ArenaPlan plan = PlanArena(buffers).value();
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

TEST(ArenaTest, RefusesLayoutsOverTheLimit) {
  std::vector<BufferLifetime> live = {{1000, 0, 1}, {1000, 1, 2}};
  EXPECT_TRUE(PlanArena(live, 2048).ok());
  absl::StatusOr<ArenaPlan> plan = PlanArena(live, 2047);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(plan.status().message().find("2047"), std::string::npos)
      << plan.status();
}

TEST(ArenaTest, SizesNearSizeMaxDoNotWrap) {
  const size_t huge = std::numeric_limits<size_t>::max() - 10;
  std::vector<BufferLifetime> live = {{huge, 0, 0}, {huge / 2, 0, 0}};
  EXPECT_EQ(PlanArena(live).status().code(),
            absl::StatusCode::kResourceExhausted);
  std::vector<BufferLifetime> halves = {{huge / 2, 0, 0}, {huge / 2, 0, 0}};
  EXPECT_EQ(PlanArena(halves).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace esb::runtime
