// Offsets of intermediate buffers in one arena, reusing memory between
// buffers whose lifetimes do not overlap.
//
// A buffer lives from the first to the last step (inclusive) that touches
// it. Buffers are placed largest first, each at the lowest 64-byte aligned
// offset where it overlaps no already placed buffer that is alive at the
// same time (greedy best-offset, as in TFLite's arena planner). The result
// is never larger than the sum of the sizes and is exact (no overlap of live
// buffers) by construction. Sizes too large to add up saturate: total_bytes
// is then SIZE_MAX, which AlignedBuffer::Allocate refuses.
//
// Functions are thread-safe.
#ifndef ESB_CORE_RUNTIME_ARENA_H_
#define ESB_CORE_RUNTIME_ARENA_H_

#include <cstddef>
#include <vector>

namespace esb::runtime {

struct BufferLifetime {
  size_t bytes = 0;
  int first_step = 0;  // Inclusive.
  int last_step = 0;   // Inclusive.
};

struct ArenaPlan {
  std::vector<size_t> offsets;  // Per buffer, in bytes, 64-byte aligned.
  size_t total_bytes = 0;
};

ArenaPlan PlanArena(const std::vector<BufferLifetime>& buffers);

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_ARENA_H_
