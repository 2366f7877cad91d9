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

// Removes Identity nodes whose output is not a graph output (readers read
// the Identity's input instead), nodes whose outputs nobody reads, and
// constants nobody reads. Returns the number of nodes removed.
int RemoveDeadNodes(Graph& graph);

// All of the above, in an order that lets each enable the next.
void Optimize(Graph& graph);

}  // namespace esb::graph

#endif  // ESB_CORE_GRAPH_PASSES_H_
