#include "core/graph/graph.h"

#include <algorithm>

namespace esb::graph {

absl::string_view OpName(Op op) {
  switch (op) {
    case Op::kConv:
      return "Conv";
    case Op::kGemm:
      return "Gemm";
    case Op::kMatMul:
      return "MatMul";
    case Op::kBatchNorm:
      return "BatchNormalization";
    case Op::kRelu:
      return "Relu";
    case Op::kClip:
      return "Clip";
    case Op::kLeakyRelu:
      return "LeakyRelu";
    case Op::kSigmoid:
      return "Sigmoid";
    case Op::kHardSigmoid:
      return "HardSigmoid";
    case Op::kHardSwish:
      return "HardSwish";
    case Op::kMaxPool:
      return "MaxPool";
    case Op::kAveragePool:
      return "AveragePool";
    case Op::kGlobalAveragePool:
      return "GlobalAveragePool";
    case Op::kAdd:
      return "Add";
    case Op::kMul:
      return "Mul";
    case Op::kSub:
      return "Sub";
    case Op::kDiv:
      return "Div";
    case Op::kPow:
      return "Pow";
    case Op::kSqrt:
      return "Sqrt";
    case Op::kErf:
      return "Erf";
    case Op::kReduceMean:
      return "ReduceMean";
    case Op::kReduceSum:
      return "ReduceSum";
    case Op::kReduceMax:
      return "ReduceMax";
    case Op::kConcat:
      return "Concat";
    case Op::kFlatten:
      return "Flatten";
    case Op::kReshape:
      return "Reshape";
    case Op::kTranspose:
      return "Transpose";
    case Op::kSoftmax:
      return "Softmax";
    case Op::kIdentity:
      return "Identity";
    case Op::kPad:
      return "Pad";
    case Op::kExpand:
      return "Expand";
    case Op::kResize:
      return "Resize";
    case Op::kLayerNorm:
      return "LayerNormalization";
    case Op::kGelu:
      return "Gelu";
  }
  return "Unknown";
}

bool IsQuantizedOp(Op op) {
  return op == Op::kConv || op == Op::kGemm || op == Op::kMatMul;
}

float Apply(const Activation& a, double v) {
  switch (a.kind) {
    case Activation::Kind::kRelu:
      return static_cast<float>(std::max(v, 0.0));
    case Activation::Kind::kClip:
      return static_cast<float>(
          std::min<double>(std::max<double>(v, a.min), a.max));
    case Activation::Kind::kNone:
      break;
  }
  return static_cast<float>(v);
}

int64_t MacsPerOutput(const Node& node, const Tensor& w) {
  if (w.shape.empty() || w.shape[0] <= 0) return 0;
  if (node.op == Op::kConv) return w.size() / w.shape[0];
  return w.shape[WeightChannelAxis(node) == 0 ? 1 : 0];
}

int WeightChannelAxis(const Node& node) {
  if (node.op == Op::kConv) return 0;
  if (node.op == Op::kGemm) return node.attrs.trans_b ? 0 : 1;
  return 1;
}

}  // namespace esb::graph
