#include "core/runtime/arena.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace esb::runtime {

absl::StatusOr<ArenaPlan> PlanArena(const std::vector<BufferLifetime>& buffers,
                                    size_t max_bytes) {
  constexpr size_t kAlign = 64;
  // Every size and end offset is checked against `limit`, so aligned()
  // cannot wrap and no end below exceeds it.
  const size_t limit =
      std::min(max_bytes, std::numeric_limits<size_t>::max() - kAlign);
  auto too_big = [&](size_t bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the arena needs at least ", bytes,
                     " bytes, over the limit of ", max_bytes, " bytes"));
  };
  for (const BufferLifetime& b : buffers) {
    if (b.bytes > limit) return too_big(b.bytes);
  }
  auto aligned = [](size_t n) { return (n + kAlign - 1) / kAlign * kAlign; };
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return buffers[a].bytes > buffers[b].bytes;
  });

  ArenaPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferLifetime& b = buffers[i];
    // Live neighbours, by offset: [offset, end) ranges to avoid.
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t j : placed) {
      const BufferLifetime& o = buffers[j];
      if (o.first_step <= b.last_step && b.first_step <= o.last_step) {
        busy.emplace_back(plan.offsets[j], plan.offsets[j] + aligned(o.bytes));
      }
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [start, end] : busy) {
      if (offset + aligned(b.bytes) <= start) break;
      offset = std::max(offset, end);
    }
    // offset is 0 or an earlier end, so offset <= limit.
    if (aligned(b.bytes) > limit - offset) {
      return too_big(std::max(offset, aligned(b.bytes)));
    }
    plan.offsets[i] = offset;
    plan.total_bytes = std::max(plan.total_bytes, offset + aligned(b.bytes));
    placed.push_back(i);
  }
  return plan;
}

}  // namespace esb::runtime
