// Shape inference for the graph IR (graph.h): the concrete shape of every
// value for given concrete input shapes, following ONNX semantics per op.
//
// Sliding windows (Conv, MaxPool, AveragePool), per spatial dim, with
// effective kernel ek = d * (k - 1) + 1 and padded size P = in + pb + pe:
//
//   floor mode: out = floor((P - ek) / s) + 1
//   ceil mode:  out = ceil((P - ek) / s) + 1, minus one when the last window
//               would start in the end padding ((out - 1) * s >= in + pb),
//               as ONNX (>= 1.16), PyTorch and ONNX Runtime do.
//
// ceil mode may let the last window run past the end padding; that overhang,
// (out - 1) * s + ek - P, is WindowGeometry::ceil_extra. Pooling treats it
// as padding that never counts (AveragePool with count_include_pad divides
// by the window clipped to [-pb, in + pe)).
//
// Other ops:
//   Conv      X [N,C,s...], W [M,C/group,k...], B [M] -> [N,M,out...]
//   Gemm      op(A) [N,K] * op(B) [K,M] (+ C unidirectionally broadcast to
//             [N,M]) -> [N,M]
//   MatMul    A [...,K] * B [K,M] -> [...,M] (A of rank 1: [K] -> [M])
//   Add, Mul  numpy broadcasting: shapes aligned at the right, each dim pair
//             equal or one of them 1
//   Concat    equal ranks, equal dims but along axis, which sums
//   Flatten   [prod(dims < axis), prod(dims >= axis)]
//   Reshape   0 copies the input dim at that index, one -1 takes the rest
//   Transpose out[i] = in[perm[i]]; an empty perm reverses the dims
//   Pad       out[i] = in[i] + pads[i] + pads[rank + i] (pads may be < 0)
//   GlobalAveragePool [N,C,s...] -> [N,C,1...]
//   BatchNorm, Softmax, Relu, Clip, LeakyRelu, Sigmoid, Identity: unchanged
//
// Ops that carry a tensor operand as an attribute in the IR (Reshape's
// shape, Pad's pads, Clip's bounds) read only input 0 and ignore any further
// inputs the importer left in place.
//
// Functions are thread-safe.
#ifndef ESB_CORE_GRAPH_SHAPES_H_
#define ESB_CORE_GRAPH_SHAPES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/graph/graph.h"

namespace esb::graph {

// Limits of InferShapes.
struct ShapeOptions {
  // Most elements of any one value (input, constant or node output) at the
  // given input shapes. 2^31 float32 elements are 8 GiB: past that an
  // executor could not allocate the value anyway.
  int64_t max_tensor_elements = int64_t{1} << 31;
  // False: constants are given by shape only and their data is not checked
  // (an importer asking for the shapes of a graph it is still building).
  bool constant_data = true;
};

// The shape of every value (graph inputs, constants, node outputs), by name,
// for the given shape of every graph input.
//
// RESOURCE_EXHAUSTED when a value would hold more than
// options.max_tensor_elements elements (or its size overflows int64), naming
// the node, its op, the size and the limit, e.g. "node 'pad' (Pad): output
// [1,1,100004,100004] of 10000800016 elements exceeds the limit of 2147483648
// elements per tensor".
//
// INVALID_ARGUMENT when an input is missing, unknown, has a negative dim or
// disagrees with its graph.inputs declaration (kBatch and other negative
// declared dims match anything; an empty declared shape is not checked);
// when a node reads a value nothing defined before it, or defines one twice;
// when a graph output is never defined or disagrees with its declaration;
// when the graph has no outputs; and on any shape mismatch, naming the node,
// its op and the shapes, e.g. "node 'conv2' (Conv): input has 3 channels but
// the weight expects 16".
absl::StatusOr<std::map<std::string, std::vector<int64_t>>> InferShapes(
    const Graph& graph,
    const std::map<std::string, std::vector<int64_t>>& input_shapes,
    const ShapeOptions& options = {});

// The resolved sliding window of a Conv, MaxPool or AveragePool node over an
// input of the given shape. All vectors have one entry per spatial dim.
struct WindowGeometry {
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads_begin;
  std::vector<int64_t> pads_end;
  std::vector<int64_t> ceil_extra;  // Overhang past pads_end (ceil mode).
  std::vector<int64_t> output;      // Spatial output sizes.
};

// Resolves the window of `node` (Conv, MaxPool or AveragePool) applied to
// `input` ([N,C,spatial...]). Empty attributes take ONNX defaults (strides
// and dilations 1, pads 0); for Conv an empty kernel comes from
// `weight_shape`, and a given one must match it. ceil_mode is read for
// pooling only, dilations for Conv and MaxPool only (AveragePool rejects
// dilations other than 1). INVALID_ARGUMENT, naming the node, on
// non-positive kernels, strides or dilations, negative pads, wrong attribute
// lengths, a window larger than the padded input or window arithmetic that
// overflows int64.
absl::StatusOr<WindowGeometry> ResolveWindow(
    const Node& node, absl::Span<const int64_t> input,
    absl::Span<const int64_t> weight_shape = {});

// numpy broadcasting of two shapes; INVALID_ARGUMENT naming both otherwise.
absl::StatusOr<std::vector<int64_t>> BroadcastShapes(
    absl::Span<const int64_t> a, absl::Span<const int64_t> b);

// "[1,3,224,224]".
std::string ShapeToString(absl::Span<const int64_t> shape);

// The number of elements: the product of the dims (1 for a scalar). Only for
// shapes InferShapes accepted; -1 when a dim is negative or the product
// overflows (CheckedProduct in checked.h says which shapes are safe).
int64_t NumElements(absl::Span<const int64_t> shape);

}  // namespace esb::graph

#endif  // ESB_CORE_GRAPH_SHAPES_H_
