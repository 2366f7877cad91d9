// Graph rewrites run after import, each preserving the graph's outputs
// exactly (up to float rounding of folded constants).
//
// Shape arithmetic is folded during import (onnx_import.h); these passes
// then simplify what is left.
#ifndef ESB_CORE_GRAPH_PASSES_H_
#define ESB_CORE_GRAPH_PASSES_H_

#include "core/graph/graph.h"

namespace esb::graph {

// Folds BatchNormalization into the Conv or Gemm that feeds it, when that
// producer has no fused activation and the BN is its only reader:
//
//   k = scale / sqrt(var + epsilon)
//   W'[m, ...] = W[m, ...] * k[m]       (Conv; Gemm: per output column)
//   B'[m]      = (B[m] - mean[m]) * k[m] + bias[m]
//
// For Gemm, alpha is applied before folding and beta C becomes part of B'.
// Folded weights get new constant names, so weights shared with other nodes
// stay untouched. Returns the number of BNs folded.
int FoldBatchNorm(Graph& graph);

// Fuses Relu or Clip into the Conv, Gemm or MatMul that feeds it when the
// activation is the producer's only reader. Returns the number fused.
int FuseActivations(Graph& graph);

// Fuses the exact GELU as exporters decompose it, x * (1 + erf(x / sqrt 2))
// * 0.5 (Div by sqrt 2 or Mul by its reciprocal; the 0.5 on either side),
// into one Gelu node. Returns the number fused.
int FuseGelu(Graph& graph);

// Fuses layer normalization as exporters decompose it below opset 17:
//   m = ReduceMean(x), d = x - m, v = ReduceMean(d^2) (Pow 2 or d * d),
//   y = d / Sqrt(v + epsilon) [* scale] [+ bias]
// with both means over the same trailing dims (kept) and scale and bias
// constants of those dims' shape, into one LayerNormalization node.
// Returns the number fused.
int FuseLayerNorm(Graph& graph);

// Removes Identity nodes whose output is not a graph output (readers read
// the Identity's input instead), nodes whose outputs nobody reads, and
// constants nobody reads. Returns the number of nodes removed.
int RemoveDeadNodes(Graph& graph);

// All of the above, in an order that lets each enable the next.
void Optimize(Graph& graph);

}  // namespace esb::graph

#endif  // ESB_CORE_GRAPH_PASSES_H_
