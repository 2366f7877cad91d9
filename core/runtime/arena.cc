#include "core/runtime/arena.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>

namespace esb::runtime {

ArenaPlan PlanArena(const std::vector<BufferLifetime>& buffers) {
  constexpr size_t kAlign = 64;
  constexpr size_t kMax = std::numeric_limits<size_t>::max();
  // Sizes and ends saturate at kMax rather than wrap, so an impossible
  // layout stays impossible (and AlignedBuffer::Allocate refuses it).
  auto aligned = [](size_t n) {
    return n > kMax - (kAlign - 1) ? kMax : (n + kAlign - 1) / kAlign * kAlign;
  };
  auto end_of = [](size_t offset, size_t bytes) {
    return bytes > kMax - offset ? kMax : offset + bytes;
  };
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
        busy.emplace_back(plan.offsets[j],
                          end_of(plan.offsets[j], aligned(o.bytes)));
      }
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [start, end] : busy) {
      if (end_of(offset, aligned(b.bytes)) <= start) break;
      offset = std::max(offset, end);
    }
    plan.offsets[i] = offset;
    plan.total_bytes =
        std::max(plan.total_bytes, end_of(offset, aligned(b.bytes)));
    placed.push_back(i);
  }
  return plan;
}

}  // namespace esb::runtime
