// Running a large batch as slices that keep a layer's data in the cache.
//
// A layer whose input and output do not fit in the last-level cache at the
// batch given writes its output to DRAM, and the next layer reads it back
// from there. In networks of small weights and large early activations (the
// MobileNets, EfficientNet) that traffic rather than arithmetic sets the
// speed at batch 8. Running the batch as k slices keeps each slice's layers
// in the cache but reads every weight k times. ChooseSlice counts both in
// bytes,
//
//   traffic(k) = k * sum over nodes of max(0, s * bytes(node) - cache)
//              + (k - 1) * weight bytes,             s = ceil(N / k),
//
// and takes the k of least traffic (the fewest slices on a tie), where
// bytes(node) is what a node reads and writes per image (its non-constant
// inputs and outputs) and `cache` is the share of the last-level cache the
// executor counts on (ExecutorOptions::slice_cache_bytes).
//
// Only graphs whose images are independent are sliced (ProfileBatch): every
// value that is not a constant has the batch as dim 0, and the same other
// dims, at batch 1 and at batch 2; and no node combines images (a Concat,
// Softmax or LayerNorm on axis 0, a Reduce* over it, a Transpose moving it,
// a Gemm with trans_a).
//
// Thread-safe (pure functions).
#ifndef ESB_CORE_RUNTIME_BATCH_SLICES_H_
#define ESB_CORE_RUNTIME_BATCH_SLICES_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "core/graph/graph.h"

namespace esb::runtime {

// Per-image figures of a graph at given input shapes.
struct BatchProfile {
  // Bytes each node reads and writes per image (non-constant values).
  std::vector<int64_t> node_bytes;
  // Bytes of the graph's constants.
  int64_t weight_bytes = 0;
};

// The profile of `graph` at `input_shapes` (graph.inputs order; dim 0 of
// each is the batch, the other dims are used as given), or nullopt when the
// images of a batch are not independent in it or its shapes do not infer.
std::optional<BatchProfile> ProfileBatch(
    const graph::Graph& graph,
    const std::vector<std::vector<int64_t>>& input_shapes);

// Images per slice for a batch of `batch` (batch itself: one run) with
// `cache_bytes` of cache; see the file comment.
int64_t ChooseSlice(const BatchProfile& profile, int64_t batch,
                    int64_t cache_bytes);

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_BATCH_SLICES_H_
