// Importer methods that turn one ONNX node into IR nodes: the dispatch by
// op type (Importer::Convert), Constant, the layers whose attributes map
// one-to-one (activations, Flatten, Transpose, BatchNormalization,
// Gemm/MatMul), and Conv and pooling with their window attributes and
// explicit or automatic pads. Shape arithmetic and data-movement ops are
// in onnx_fold.cc; the walk over the graph in onnx_import.cc.
#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/graph/checked.h"
#include "core/onnx/onnx_importer.h"

namespace esb::graph::internal {

absl::Status Importer::Convert(const onnx::NodeProto& n) {
  const std::string& op = n.op_type();
  if (op == "Constant") return ConvertConstant(n);
  if (op == "Shape" || op == "Gather" || op == "ConstantOfShape" ||
      op == "Cast") {
    return ConvertShapeOp(n);
  }
  if (op == "Identity" || op == "Dropout") {
    if (op == "Dropout" && HasInput(n, 2)) {
      const ConstValue* training = Const(n.input(2));
      if (training == nullptr || training->size() != 1 ||
          (training->is_int && training->i[0] != 0) ||
          (!training->is_int && training->f[0] != 0.0f)) {
        return Fail(n, "training_mode must be a constant false");
      }
    }
    if (op == "Dropout" && n.output_size() > 1 && !n.output(1).empty() &&
        read_.count(n.output(1))) {
      return Fail(n, "the mask output is not supported");
    }
    alias_[n.output(0)] = Resolve(n.input(0));
    return absl::OkStatus();
  }
  if (op == "Conv" || op == "MaxPool" || op == "AveragePool") {
    return ConvertConvOrPool(n);
  }
  if (op == "Reshape") return ConvertReshape(n);
  if (op == "Squeeze") return ConvertSqueeze(n, false);
  if (op == "Unsqueeze") return ConvertSqueeze(n, true);
  if (op == "Concat") return ConvertConcat(n);
  if (op == "Add") return ConvertBinary(n, Op::kAdd);
  if (op == "Mul") return ConvertBinary(n, Op::kMul);
  if (op == "Sub") return ConvertBinary(n, Op::kSub);
  if (op == "Div") return ConvertBinary(n, Op::kDiv);
  if (op == "Pow") return ConvertBinary(n, Op::kPow);
  if (op == "Softmax") return ConvertSoftmax(n);
  if (op == "Pad") return ConvertPad(n);
  if (op == "Slice") return ConvertSlice(n);
  if (op == "Split") return ConvertSplit(n);
  if (op == "Expand") return ConvertExpand(n);
  if (op == "Sum") return ConvertSum(n);
  if (op == "Resize") return ConvertResize(n);
  if (op == "LayerNormalization") return ConvertLayerNorm(n);
  if (op == "ReduceMean") return ConvertReduce(n, Op::kReduceMean);
  if (op == "ReduceSum") return ConvertReduce(n, Op::kReduceSum);
  if (op == "ReduceMax") return ConvertReduce(n, Op::kReduceMax);

  if (Const(n.input(0)) != nullptr && op != "Gemm" && op != "MatMul") {
    return Fail(n,
                "its input is a constant; only computed tensors are "
                "supported here");
  }
  if (op == "Relu") {
    Emit(n, Op::kRelu);
  } else if (op == "Sigmoid") {
    Emit(n, Op::kSigmoid);
  } else if (op == "HardSigmoid") {
    Node& node = Emit(n, Op::kHardSigmoid);
    node.attrs.alpha = Float(n, "alpha", 0.2f);
    node.attrs.beta = Float(n, "beta", 0.5f);
  } else if (op == "HardSwish") {
    Emit(n, Op::kHardSwish);
  } else if (op == "Sqrt") {
    Emit(n, Op::kSqrt);
  } else if (op == "Erf") {
    Emit(n, Op::kErf);
  } else if (op == "LeakyRelu") {
    Emit(n, Op::kLeakyRelu).attrs.alpha = Float(n, "alpha", 0.01f);
  } else if (op == "GlobalAveragePool") {
    const auto* s = Shape(n.input(0));
    if (s != nullptr && s->size() != 4) {
      return Fail(n, absl::StrCat("input has shape ", DimsText(*s),
                                  "; only 4-D (NCHW) inputs are supported"));
    }
    Emit(n, Op::kGlobalAveragePool);
  } else if (op == "Clip") {
    float lo = -std::numeric_limits<float>::infinity();
    float hi = std::numeric_limits<float>::infinity();
    if (opset_ < 11) {
      lo = Float(n, "min", lo);
      hi = Float(n, "max", hi);
    } else {
      if (HasInput(n, 1)) {
        auto v = ScalarInput(n, 1, "min");
        if (!v.ok()) return v.status();
        lo = *v;
      }
      if (HasInput(n, 2)) {
        auto v = ScalarInput(n, 2, "max");
        if (!v.ok()) return v.status();
        hi = *v;
      }
    }
    Node& node = Emit(n, Op::kClip);
    node.attrs.min = lo;
    node.attrs.max = hi;
  } else if (op == "Flatten") {
    const auto* s = Shape(n.input(0));
    int64_t axis = Int(n, "axis", 1);
    if (axis < 0) {
      if (s == nullptr) return Fail(n, "negative axis on an unknown rank");
      axis += static_cast<int64_t>(s->size());
    }
    Emit(n, Op::kFlatten).attrs.axis = axis;
  } else if (op == "Transpose") {
    const auto* s = Shape(n.input(0));
    std::vector<int64_t> perm = Ints(n, "perm", {});
    if (perm.empty()) {
      if (s == nullptr) return Fail(n, "no perm and an unknown input rank");
      for (int64_t d = static_cast<int64_t>(s->size()) - 1; d >= 0; --d) {
        perm.push_back(d);
      }
    }
    Emit(n, Op::kTranspose).attrs.perm = perm;
  } else if (op == "BatchNormalization") {
    if (n.output_size() > 1 || Int(n, "training_mode", 0) != 0) {
      return Fail(n,
                  "training mode (running statistics outputs) is not "
                  "supported; export the model in inference mode");
    }
    for (int i = 1; i <= 4; ++i) {
      const ConstValue* c = Const(n.input(i));
      if (c == nullptr || c->is_int) {
        return Fail(n, absl::StrCat("input ", i, " ('", n.input(i),
                                    "') must be a float constant"));
      }
    }
    Node& node = Emit(n, Op::kBatchNorm);
    for (int i = 1; i <= 4; ++i) node.inputs.push_back(Resolve(n.input(i)));
    node.attrs.epsilon = Float(n, "epsilon", 1e-5f);
  } else if (op == "Gemm" || op == "MatMul") {
    if (Const(n.input(0)) != nullptr) {
      return Fail(n,
                  "input A is a constant; only computed inputs are "
                  "supported");
    }
    const ConstValue* b = Const(n.input(1));
    if (b == nullptr || b->is_int || b->shape.size() != 2) {
      return Fail(
          n, absl::StrCat("input B ('", n.input(1),
                          "') must be a 2-D float constant (weights); products "
                          "of two computed tensors are not supported"));
    }
    if (std::count(b->shape.begin(), b->shape.end(), 0) > 0) {
      return Fail(n, absl::StrCat("input B ('", n.input(1), "') has shape ",
                                  DimsText(b->shape),
                                  "; zero-sized weights are not supported"));
    }
    Node& node = Emit(n, op == "Gemm" ? Op::kGemm : Op::kMatMul);
    node.inputs.push_back(Resolve(n.input(1)));
    if (op == "Gemm") {
      node.attrs.alpha = Float(n, "alpha", 1.0f);
      node.attrs.beta = Float(n, "beta", 1.0f);
      node.attrs.trans_a = Int(n, "transA", 0) != 0;
      node.attrs.trans_b = Int(n, "transB", 0) != 0;
      if (HasInput(n, 2)) {
        const ConstValue* c = Const(n.input(2));
        if (c == nullptr || c->is_int) {
          return Fail(n, "input C must be a float constant");
        }
        node.inputs.push_back(Resolve(n.input(2)));
      }
    }
  } else {
    return Fail(n, "is not handled");  // Unreachable: SupportedOps() lists it.
  }
  return absl::OkStatus();
}

absl::Status Importer::ConvertConstant(const onnx::NodeProto& n) {
  ConstValue v;
  if (const auto* a = Attr(n, "value")) {
    auto c = internal::FromTensorProto(
        a->t(), absl::StrCat("node '", current_name_, "' (Constant) value"),
        options_.max_tensor_elements);
    if (!c.ok()) return c.status();
    v = *std::move(c);
  } else if (const auto* a = Attr(n, "value_float")) {
    v.f = {a->f()};
  } else if (const auto* a = Attr(n, "value_floats")) {
    if (a->floats_size() > options_.max_tensor_elements) {
      return CheckOutput(n, {a->floats_size()});
    }
    v.f.assign(a->floats().begin(), a->floats().end());
    v.shape = {static_cast<int64_t>(v.f.size())};
  } else if (const auto* a = Attr(n, "value_int")) {
    v.is_int = true;
    v.i = {a->i()};
  } else if (const auto* a = Attr(n, "value_ints")) {
    if (a->ints_size() > options_.max_tensor_elements) {
      return CheckOutput(n, {a->ints_size()});
    }
    v.is_int = true;
    v.i.assign(a->ints().begin(), a->ints().end());
    v.shape = {static_cast<int64_t>(v.i.size())};
  } else {
    return Fail(n, "only tensor, float and int values are supported");
  }
  return StoreOutput(n, std::move(v));
}

absl::StatusOr<std::vector<int64_t>> Importer::SpatialPads(
    const onnx::NodeProto& n, const std::vector<int64_t>& kernel,
    const std::vector<int64_t>& strides,
    const std::vector<int64_t>& dilations) {
  const size_t spatial = kernel.size();
  const std::string auto_pad = String(n, "auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    std::vector<int64_t> pads = Ints(n, "pads", {});
    if (pads.empty()) pads.assign(2 * spatial, 0);
    if (pads.size() != 2 * spatial) {
      return Fail(n, absl::StrCat("pads has ", pads.size(), " values; ",
                                  2 * spatial, " expected"));
    }
    for (int64_t p : pads) {
      if (p < 0) return Fail(n, "negative pads are not supported");
    }
    return pads;
  }
  if (auto_pad == "VALID") return std::vector<int64_t>(2 * spatial, 0);
  if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") {
    return Fail(n, absl::StrCat("auto_pad '", auto_pad, "' is unknown"));
  }
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr || s->size() != spatial + 2) {
    return Fail(n, "auto_pad needs the input's static spatial shape");
  }
  std::vector<int64_t> pads(2 * spatial);
  for (size_t d = 0; d < spatial; ++d) {
    const int64_t in = (*s)[2 + d];
    if (in == kUnknownDim) {
      return Fail(n, "auto_pad needs the input's static spatial shape");
    }
    // out = ceil(in / s); total = max(0, (out - 1) * s + (k - 1) * d + 1 - in).
    const int64_t out = in / strides[d] + (in % strides[d] != 0 ? 1 : 0);
    std::optional<int64_t> span = CheckedMul(out - 1, strides[d]);
    std::optional<int64_t> reach = CheckedMul(kernel[d] - 1, dilations[d]);
    if (span) span = reach ? CheckedAdd(*span, *reach) : std::nullopt;
    if (!span || *span > std::numeric_limits<int64_t>::max() / 2) {
      return Fail(n,
                  absl::StrCat("auto_pad window in spatial dim ", d,
                               " overflows (kernel ", kernel[d], ", stride ",
                               strides[d], ", dilation ", dilations[d], ")"));
    }
    const int64_t total = std::max<int64_t>(0, *span + 1 - in);
    const int64_t small = total / 2;
    pads[d] = auto_pad == "SAME_UPPER" ? small : total - small;
    pads[d + spatial] = total - pads[d];
  }
  return pads;
}

absl::Status Importer::ConvertConvOrPool(const onnx::NodeProto& n) {
  const std::string& op = n.op_type();
  if (Const(n.input(0)) != nullptr) {
    return Fail(n,
                "its input is a constant; only computed tensors are "
                "supported here");
  }
  std::vector<int64_t> kernel;
  const ConstValue* w = nullptr;
  if (op == "Conv") {
    w = Const(n.input(1));
    if (w == nullptr || w->is_int) {
      return Fail(n, absl::StrCat("weights ('", n.input(1),
                                  "') must be a float constant"));
    }
    if (w->shape.size() != 4) {
      return Fail(n, absl::StrCat("weights have shape ", DimsText(w->shape),
                                  "; only 2-D convolutions (4-D weights) are "
                                  "supported"));
    }
    if (std::count(w->shape.begin(), w->shape.end(), 0) > 0) {
      return Fail(n, absl::StrCat("weights ('", n.input(1), "') have shape ",
                                  DimsText(w->shape),
                                  "; zero-sized weights are not supported"));
    }
    kernel = {w->shape[2], w->shape[3]};
    if (HasInput(n, 2)) {
      const ConstValue* b = Const(n.input(2));
      if (b == nullptr || b->is_int) {
        return Fail(n, "bias must be a float constant");
      }
    }
  } else {
    kernel = Ints(n, "kernel_shape", {});
    if (kernel.size() != 2) {
      return Fail(n, absl::StrCat("kernel_shape has ", kernel.size(),
                                  " values; only 2-D pooling is supported"));
    }
    if (op == "MaxPool" && n.output_size() > 1 && !n.output(1).empty()) {
      return Fail(n, "the Indices output is not supported");
    }
  }
  const std::vector<int64_t> strides = Ints(n, "strides", {1, 1});
  const std::vector<int64_t> dilations = Ints(n, "dilations", {1, 1});
  if (strides.size() != 2 || dilations.size() != 2) {
    return Fail(n, "strides and dilations must have 2 values");
  }
  for (size_t d = 0; d < 2; ++d) {
    if (strides[d] < 1 || dilations[d] < 1) {
      return Fail(n, "strides and dilations must be >= 1");
    }
  }
  if (op == "AveragePool" && Attr(n, "dilations") != nullptr &&
      (dilations[0] != 1 || dilations[1] != 1)) {
    return Fail(n, "dilated average pooling is not supported");
  }
  auto pads = SpatialPads(n, kernel, strides, dilations);
  if (!pads.ok()) return pads.status();
  if (const std::vector<int64_t>* s = Shape(n.input(0));
      s != nullptr && s->size() != 4) {
    return Fail(n, absl::StrCat("input has shape ", DimsText(*s),
                                "; only 4-D (NCHW) inputs are supported"));
  }
  Node& node = Emit(n, op == "Conv"      ? Op::kConv
                       : op == "MaxPool" ? Op::kMaxPool
                                         : Op::kAveragePool);
  node.attrs.kernel = kernel;
  node.attrs.strides = strides;
  node.attrs.dilations = dilations;
  node.attrs.pads = *pads;
  if (op == "Conv") {
    node.attrs.group = Int(n, "group", 1);
    node.inputs.push_back(Resolve(n.input(1)));
    if (HasInput(n, 2)) node.inputs.push_back(Resolve(n.input(2)));
  } else {
    node.attrs.ceil_mode = Int(n, "ceil_mode", 0) != 0;
    node.attrs.count_include_pad = Int(n, "count_include_pad", 0) != 0;
  }
  return absl::OkStatus();
}

absl::Status Importer::ConvertReduce(const onnx::NodeProto& n, Op op) {
  if (Const(n.input(0)) != nullptr) {
    return Fail(n,
                "its input is a constant; only computed tensors are "
                "supported here");
  }
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr) return Fail(n, "the input's rank is unknown");
  const auto rank = static_cast<int64_t>(s->size());
  // ReduceSum takes its axes as an input from opset 13; the others as an
  // attribute up to opset 17.
  std::vector<int64_t> axes = Ints(n, "axes", {});
  if (op == Op::kReduceSum && opset_ >= 13 && HasInput(n, 1)) {
    absl::StatusOr<std::vector<int64_t>> a = IntsInput(n, 1, "axes");
    if (!a.ok()) return a.status();
    axes = *std::move(a);
  }
  if (axes.empty()) {
    if (op == Op::kReduceSum && Int(n, "noop_with_empty_axes", 0) != 0) {
      alias_[n.output(0)] = Resolve(n.input(0));
      return absl::OkStatus();
    }
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) {
      return Fail(n, absl::StrCat("axis ", a, " is outside the ", rank,
                                  " dims of input ", DimsText(*s)));
    }
    if (a < 0) a += rank;
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) {
    return Fail(n, "an axis is named twice");
  }
  Node& node = Emit(n, op);
  node.attrs.axes = std::move(axes);
  node.attrs.keep_dims = Int(n, "keepdims", 1) != 0;
  return absl::OkStatus();
}

}  // namespace esb::graph::internal
