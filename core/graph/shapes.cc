#include "core/graph/shapes.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/graph/checked.h"

namespace esb::graph {
namespace {

using Shape = std::vector<int64_t>;

std::string NodePrefix(const Node& node) {
  return absl::StrCat("node '", node.name, "' (", OpName(node.op), "): ");
}

template <typename... Args>
absl::Status NodeError(const Node& node, const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(NodePrefix(node), args...));
}

// A spatial attribute: empty means `fallback` in every dim.
absl::StatusOr<Shape> SpatialAttr(const Node& node, absl::string_view name,
                                  const std::vector<int64_t>& attr,
                                  size_t spatial, int64_t fallback) {
  if (attr.empty()) return Shape(spatial, fallback);
  if (attr.size() != spatial) {
    return NodeError(node, name, " has ", attr.size(), " values ",
                     ShapeToString(attr), " but the input has ", spatial,
                     " spatial dims");
  }
  return attr;
}

absl::Status CheckArity(const Node& node, size_t min_inputs,
                        size_t max_inputs) {
  if (node.inputs.size() < min_inputs || node.inputs.size() > max_inputs) {
    std::string expected = min_inputs == max_inputs
                               ? absl::StrCat(min_inputs)
                               : absl::StrCat(min_inputs, " to ", max_inputs);
    return NodeError(node, "expects ", expected, " inputs but has ",
                     node.inputs.size());
  }
  if (node.outputs.size() != 1) {
    return NodeError(node, "expects 1 output but has ", node.outputs.size());
  }
  return absl::OkStatus();
}

absl::Status CheckRank(const Node& node, absl::string_view what,
                       const Shape& shape, size_t min_rank) {
  if (shape.size() < min_rank) {
    return NodeError(node, what, " has shape ", ShapeToString(shape),
                     " but needs rank >= ", min_rank);
  }
  return absl::OkStatus();
}

absl::Status CheckAxis(const Node& node, int64_t axis, size_t limit,
                       const Shape& shape) {
  if (axis < 0 || static_cast<size_t>(axis) >= limit) {
    return NodeError(node, "axis ", axis, " is out of range for input shape ",
                     ShapeToString(shape));
  }
  return absl::OkStatus();
}

absl::StatusOr<Shape> ConvShape(const Node& node,
                                const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  const Shape& w = *in[1];
  if (auto s = CheckRank(node, "input", x, 3); !s.ok()) return s;
  if (w.size() != x.size()) {
    return NodeError(node, "weight shape ", ShapeToString(w),
                     " does not match the rank of input shape ",
                     ShapeToString(x));
  }
  const int64_t group = node.attrs.group;
  if (group < 1 || w[0] % group != 0) {
    return NodeError(node, "group ", group, " does not divide the ", w[0],
                     " output channels of weight ", ShapeToString(w));
  }
  const std::optional<int64_t> channels = CheckedMul(w[1], group);
  if (!channels) {
    return NodeError(node, "group ", group, " times the weight's ", w[1],
                     " input channels overflows int64");
  }
  if (x[1] != *channels) {
    return NodeError(node, "input has ", x[1],
                     " channels but the weight expects ", *channels, " (input ",
                     ShapeToString(x), ", weight ", ShapeToString(w),
                     ", group ", group, ")");
  }
  if (in.size() > 2 && *in[2] != Shape{w[0]}) {
    return NodeError(node, "bias shape ", ShapeToString(*in[2]), " should be [",
                     w[0], "]");
  }
  auto window = ResolveWindow(node, x, w);
  if (!window.ok()) return window.status();
  Shape out = {x[0], w[0]};
  out.insert(out.end(), window->output.begin(), window->output.end());
  return out;
}

absl::StatusOr<Shape> PoolShape(const Node& node, const Shape& x) {
  if (auto s = CheckRank(node, "input", x, 3); !s.ok()) return s;
  auto window = ResolveWindow(node, x);
  if (!window.ok()) return window.status();
  Shape out = {x[0], x[1]};
  out.insert(out.end(), window->output.begin(), window->output.end());
  return out;
}

absl::StatusOr<Shape> GemmShape(const Node& node,
                                const std::vector<const Shape*>& in) {
  const Shape& a = *in[0];
  const Shape& b = *in[1];
  if (a.size() != 2 || b.size() != 2) {
    return NodeError(node, "A ", ShapeToString(a), " and B ", ShapeToString(b),
                     " must both have rank 2");
  }
  const int64_t n = node.attrs.trans_a ? a[1] : a[0];
  const int64_t k = node.attrs.trans_a ? a[0] : a[1];
  const int64_t kb = node.attrs.trans_b ? b[1] : b[0];
  const int64_t m = node.attrs.trans_b ? b[0] : b[1];
  if (k != kb) {
    return NodeError(
        node, "A ", ShapeToString(a), node.attrs.trans_a ? " (transposed)" : "",
        " has K = ", k, " but B ", ShapeToString(b),
        node.attrs.trans_b ? " (transposed)" : "", " has K = ", kb);
  }
  Shape out = {n, m};
  if (in.size() > 2) {
    const Shape& c = *in[2];
    auto broadcast = BroadcastShapes(out, c);
    if (c.size() > 2 || !broadcast.ok() || *broadcast != out) {
      return NodeError(node, "C ", ShapeToString(c),
                       " does not broadcast to the output ",
                       ShapeToString(out));
    }
  }
  return out;
}

absl::StatusOr<Shape> MatMulShape(const Node& node,
                                  const std::vector<const Shape*>& in) {
  const Shape& a = *in[0];
  const Shape& b = *in[1];
  if (b.size() != 2) {
    return NodeError(node, "B ", ShapeToString(b),
                     " must have rank 2 (batched B is not supported)");
  }
  if (a.empty() || a.back() != b[0]) {
    return NodeError(node, "A ", ShapeToString(a), " and B ", ShapeToString(b),
                     " disagree on K");
  }
  Shape out(a.begin(), a.end() - 1);
  out.push_back(b[1]);
  return out;
}

absl::StatusOr<Shape> BatchNormShape(const Node& node,
                                     const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  if (auto s = CheckRank(node, "input", x, 2); !s.ok()) return s;
  static constexpr const char* kNames[] = {"scale", "bias", "mean", "var"};
  for (size_t i = 1; i < 5; ++i) {
    if (*in[i] != Shape{x[1]}) {
      return NodeError(node, kNames[i - 1], " has shape ",
                       ShapeToString(*in[i]), " but the input ",
                       ShapeToString(x), " has ", x[1], " channels");
    }
  }
  return x;
}

absl::StatusOr<Shape> ConcatShape(const Node& node,
                                  const std::vector<const Shape*>& in) {
  Shape out = *in[0];
  if (auto s = CheckAxis(node, node.attrs.axis, out.size(), out); !s.ok()) {
    return s;
  }
  const size_t axis = static_cast<size_t>(node.attrs.axis);
  for (size_t i = 1; i < in.size(); ++i) {
    const Shape& s = *in[i];
    bool ok = s.size() == out.size();
    for (size_t d = 0; ok && d < s.size(); ++d) {
      ok = d == axis || s[d] == out[d];
    }
    if (!ok) {
      return NodeError(node, "input ", i, " '", node.inputs[i], "' has shape ",
                       ShapeToString(s), " but input 0 has ",
                       ShapeToString(*in[0]), " (axis ", axis, ")");
    }
    std::optional<int64_t> sum = CheckedAdd(out[axis], s[axis]);
    if (!sum) {
      return NodeError(node, "the inputs' sizes along axis ", axis,
                       " overflow int64");
    }
    out[axis] = *sum;
  }
  return out;
}

absl::StatusOr<Shape> FlattenShape(const Node& node, const Shape& x) {
  if (node.attrs.axis < 0 || static_cast<size_t>(node.attrs.axis) > x.size()) {
    return NodeError(node, "axis ", node.attrs.axis,
                     " is out of range for input shape ", ShapeToString(x));
  }
  const auto dims = absl::MakeConstSpan(x);
  return Shape{NumElements(dims.subspan(0, node.attrs.axis)),
               NumElements(dims.subspan(node.attrs.axis))};
}

absl::StatusOr<Shape> ReshapeShape(const Node& node, const Shape& x) {
  Shape out = node.attrs.shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0) {
      if (i >= x.size()) {
        return NodeError(node, "target shape ", ShapeToString(out),
                         " copies dim ", i, " (0) but the input ",
                         ShapeToString(x), " has rank ", x.size());
      }
      out[i] = x[i];
    } else if (out[i] == -1) {
      if (infer >= 0) {
        return NodeError(node, "target shape ", ShapeToString(out),
                         " has more than one -1");
      }
      infer = static_cast<int>(i);
      continue;
    } else if (out[i] < 0) {
      return NodeError(node, "target shape ", ShapeToString(node.attrs.shape),
                       " has dim ", out[i]);
    }
    std::optional<int64_t> next = CheckedMul(known, out[i]);
    if (!next) {
      return NodeError(node, "target shape ", ShapeToString(node.attrs.shape),
                       " has more elements than an int64 holds");
    }
    known = *next;
  }
  const int64_t total = NumElements(x);
  if (infer >= 0) {
    if (known == 0 || total % known != 0) {
      return NodeError(node, "cannot reshape input ", ShapeToString(x), " (",
                       total, " elements) to ",
                       ShapeToString(node.attrs.shape));
    }
    out[infer] = total / known;
  } else if (known != total) {
    return NodeError(node, "cannot reshape input ", ShapeToString(x), " (",
                     total, " elements) to ", ShapeToString(node.attrs.shape),
                     " (", known, " elements)");
  }
  return out;
}

absl::StatusOr<Shape> TransposeShape(const Node& node, const Shape& x) {
  std::vector<int64_t> perm = node.attrs.perm;
  if (perm.empty()) {
    for (size_t i = x.size(); i > 0; --i) perm.push_back(i - 1);
  }
  std::set<int64_t> seen(perm.begin(), perm.end());
  bool ok = perm.size() == x.size() && seen.size() == perm.size();
  const auto rank = static_cast<int64_t>(x.size());
  for (int64_t p : perm) ok = ok && p >= 0 && p < rank;
  if (!ok) {
    return NodeError(node, "perm ", ShapeToString(perm),
                     " is not a permutation of the dims of input ",
                     ShapeToString(x));
  }
  Shape out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[perm[i]];
  return out;
}

absl::StatusOr<Shape> ReduceShape(const Node& node, const Shape& x) {
  const std::vector<int64_t>& axes = node.attrs.axes;
  const auto rank = static_cast<int64_t>(x.size());
  bool ok = !axes.empty();
  for (size_t i = 0; i < axes.size(); ++i) {
    ok = ok && axes[i] >= 0 && axes[i] < rank &&
         (i == 0 || axes[i - 1] < axes[i]);
  }
  if (!ok) {
    return NodeError(node, "axes ", ShapeToString(axes),
                     " are not increasing dims of input ", ShapeToString(x));
  }
  Shape out;
  for (int64_t d = 0; d < rank; ++d) {
    const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!reduced) {
      out.push_back(x[d]);
    } else if (node.attrs.keep_dims) {
      out.push_back(1);
    }
  }
  return out;
}

absl::StatusOr<Shape> PadShape(const Node& node, const Shape& x) {
  const std::vector<int64_t>& pads = node.attrs.pads;
  if (pads.size() != 2 * x.size()) {
    return NodeError(node, "pads ", ShapeToString(pads), " has ", pads.size(),
                     " values but the input ", ShapeToString(x), " needs ",
                     2 * x.size());
  }
  Shape out = x;
  for (size_t i = 0; i < x.size(); ++i) {
    std::optional<int64_t> sum = CheckedAdd(x[i], pads[i]);
    if (sum) sum = CheckedAdd(*sum, pads[x.size() + i]);
    if (!sum) {
      return NodeError(node, "pads ", ShapeToString(pads),
                       " overflow int64 in dim ", i, " of input ",
                       ShapeToString(x));
    }
    out[i] = *sum;
    if (out[i] < 0) {
      return NodeError(node, "pads ", ShapeToString(pads),
                       " remove more than the input ", ShapeToString(x),
                       " has in dim ", i);
    }
  }
  return out;
}

absl::StatusOr<Shape> ExpandShape(const Node& node, const Shape& x) {
  auto out = BroadcastShapes(x, node.attrs.shape);
  if (!out.ok()) return NodeError(node, out.status().message());
  return out;
}

absl::StatusOr<Shape> ResizeShape(const Node& node, const Shape& x) {
  if (x.size() != 4) {
    return NodeError(node, "input has shape ", ShapeToString(x),
                     " but needs rank 4 (N, C, H, W)");
  }
  if (node.attrs.shape.size() != 2 || node.attrs.scales.size() != 4) {
    return NodeError(node, "needs 2 output sizes and 4 scales, has ",
                     node.attrs.shape.size(), " and ",
                     node.attrs.scales.size());
  }
  Shape out = {x[0], x[1], node.attrs.shape[0], node.attrs.shape[1]};
  for (size_t d = 2; d < 4; ++d) {
    const float scale = node.attrs.scales[d];
    if (out[d] < 1 || !(scale > 0.0f) || !std::isfinite(scale)) {
      return NodeError(node, "output size ", out[d], " with scale ", scale,
                       " in dim ", d, "; both must be positive");
    }
  }
  return out;
}

absl::StatusOr<Shape> LayerNormShape(const Node& node,
                                     const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  if (auto s = CheckAxis(node, node.attrs.axis, x.size(), x); !s.ok()) {
    return s;
  }
  const Shape normalized(x.begin() + node.attrs.axis, x.end());
  static constexpr const char* kNames[] = {"scale", "bias"};
  for (size_t i = 1; i < in.size(); ++i) {
    if (*in[i] != normalized) {
      return NodeError(node, kNames[i - 1], " has shape ",
                       ShapeToString(*in[i]), " but the normalized dims of ",
                       ShapeToString(x), " are ", ShapeToString(normalized));
    }
  }
  return x;
}

absl::StatusOr<Shape> NodeShape(const Node& node,
                                const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  switch (node.op) {
    case Op::kConv:
      return ConvShape(node, in);
    case Op::kGemm:
      return GemmShape(node, in);
    case Op::kMatMul:
      return MatMulShape(node, in);
    case Op::kBatchNorm:
      return BatchNormShape(node, in);
    case Op::kMaxPool:
    case Op::kAveragePool:
      return PoolShape(node, x);
    case Op::kGlobalAveragePool: {
      if (auto s = CheckRank(node, "input", x, 3); !s.ok()) return s;
      Shape out(x.size(), 1);
      out[0] = x[0];
      out[1] = x[1];
      return out;
    }
    case Op::kAdd:
    case Op::kMul:
    case Op::kSub:
    case Op::kDiv:
    case Op::kPow: {
      auto out = BroadcastShapes(x, *in[1]);
      if (!out.ok()) return NodeError(node, out.status().message());
      return out;
    }
    case Op::kConcat:
      return ConcatShape(node, in);
    case Op::kFlatten:
      return FlattenShape(node, x);
    case Op::kReshape:
      return ReshapeShape(node, x);
    case Op::kTranspose:
      return TransposeShape(node, x);
    case Op::kSoftmax:
      if (auto s = CheckAxis(node, node.attrs.axis, x.size(), x); !s.ok()) {
        return s;
      }
      return x;
    case Op::kPad:
      return PadShape(node, x);
    case Op::kExpand:
      return ExpandShape(node, x);
    case Op::kResize:
      return ResizeShape(node, x);
    case Op::kLayerNorm:
      return LayerNormShape(node, in);
    case Op::kReduceMean:
    case Op::kReduceSum:
    case Op::kReduceMax:
      return ReduceShape(node, x);
    case Op::kRelu:
    case Op::kClip:
    case Op::kLeakyRelu:
    case Op::kSigmoid:
    case Op::kHardSigmoid:
    case Op::kHardSwish:
    case Op::kSqrt:
    case Op::kErf:
    case Op::kGelu:
    case Op::kIdentity:
      return x;
  }
  return NodeError(node, "unknown op");
}

absl::Status CheckNodeArity(const Node& node) {
  switch (node.op) {
    case Op::kConv:
    case Op::kGemm:
      return CheckArity(node, 2, 3);
    case Op::kMatMul:
    case Op::kAdd:
    case Op::kMul:
    case Op::kSub:
    case Op::kDiv:
    case Op::kPow:
      return CheckArity(node, 2, 2);
    case Op::kBatchNorm:
      return CheckArity(node, 5, 5);
    case Op::kLayerNorm:
      return CheckArity(node, 2, 3);
    case Op::kConcat:
      return CheckArity(node, 1, node.inputs.size() + 1);
    case Op::kReshape:
    case Op::kPad:
    case Op::kClip:
      return CheckArity(node, 1, 3);
    default:
      return CheckArity(node, 1, 1);
  }
}

// A declared shape admits `shape` when ranks agree and every declared dim is
// negative (free) or equal. An empty declaration admits anything.
bool Admits(const std::vector<int64_t>& declared, const Shape& shape) {
  if (declared.empty()) return true;
  if (declared.size() != shape.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (declared[i] >= 0 && declared[i] != shape[i]) return false;
  }
  return true;
}

}  // namespace

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

int64_t NumElements(absl::Span<const int64_t> shape) {
  return CheckedProduct(shape).value_or(-1);
}

absl::StatusOr<std::vector<int64_t>> BroadcastShapes(
    absl::Span<const int64_t> a, absl::Span<const int64_t> b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    // Aligned at the right; missing leading dims are 1.
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("shapes ", ShapeToString(a), " and ", ShapeToString(b),
                       " do not broadcast"));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

absl::StatusOr<WindowGeometry> ResolveWindow(
    const Node& node, absl::Span<const int64_t> input,
    absl::Span<const int64_t> weight_shape) {
  if (input.size() < 3) {
    return NodeError(node, "input has shape ", ShapeToString(input),
                     " but needs rank >= 3");
  }
  const size_t n = input.size() - 2;
  const bool is_conv = node.op == Op::kConv;
  const bool ceil_mode = !is_conv && node.attrs.ceil_mode;
  WindowGeometry g;
  if (is_conv) {
    Shape from_weight(weight_shape.begin() + 2, weight_shape.end());
    if (!node.attrs.kernel.empty() && node.attrs.kernel != from_weight) {
      return NodeError(node, "kernel ", ShapeToString(node.attrs.kernel),
                       " does not match the weight shape ",
                       ShapeToString(weight_shape));
    }
    g.kernel = from_weight;
  } else {
    if (node.attrs.kernel.size() != n) {
      return NodeError(node, "kernel ", ShapeToString(node.attrs.kernel),
                       " does not match the ", n, " spatial dims of the input ",
                       ShapeToString(input));
    }
    g.kernel = node.attrs.kernel;
  }
  auto strides = SpatialAttr(node, "strides", node.attrs.strides, n, 1);
  if (!strides.ok()) return strides.status();
  g.strides = *std::move(strides);
  if (node.op == Op::kAveragePool) {
    for (int64_t d : node.attrs.dilations) {
      if (d != 1) {
        return NodeError(node, "dilations ",
                         ShapeToString(node.attrs.dilations),
                         " are not supported");
      }
    }
    g.dilations.assign(n, 1);
  } else {
    auto dilations = SpatialAttr(node, "dilations", node.attrs.dilations, n, 1);
    if (!dilations.ok()) return dilations.status();
    g.dilations = *std::move(dilations);
  }
  const std::vector<int64_t>& pads = node.attrs.pads;
  if (!pads.empty() && pads.size() != 2 * n) {
    return NodeError(node, "pads ", ShapeToString(pads), " has ", pads.size(),
                     " values but the input ", ShapeToString(input), " needs ",
                     2 * n);
  }
  for (size_t i = 0; i < n; ++i) {
    g.pads_begin.push_back(pads.empty() ? 0 : pads[i]);
    g.pads_end.push_back(pads.empty() ? 0 : pads[n + i]);
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t k = g.kernel[i];
    const int64_t s = g.strides[i];
    const int64_t d = g.dilations[i];
    const int64_t pb = g.pads_begin[i];
    const int64_t pe = g.pads_end[i];
    if (k < 1 || s < 1 || d < 1 || pb < 0 || pe < 0) {
      return NodeError(node, "invalid window in spatial dim ", i, ": kernel ",
                       k, ", stride ", s, ", dilation ", d, ", pads ", pb, "/",
                       pe);
    }
    const int64_t in = input[2 + i];
    // Every term below stays under 2^62, so the window arithmetic after
    // this check cannot overflow.
    constexpr int64_t kMaxSpan = int64_t{1} << 62;
    std::optional<int64_t> reach = CheckedMul(d, k - 1);
    std::optional<int64_t> padded_or = CheckedAdd(in, pb);
    if (padded_or) padded_or = CheckedAdd(*padded_or, pe);
    if (!reach || *reach >= kMaxSpan || !padded_or || *padded_or >= kMaxSpan ||
        s >= kMaxSpan || in < 0) {
      return NodeError(node, "window arithmetic overflows in spatial dim ", i,
                       ": input ", in, ", kernel ", k, ", stride ", s,
                       ", dilation ", d, ", pads ", pb, "/", pe);
    }
    const int64_t ek = *reach + 1;
    const int64_t padded = *padded_or;
    if (padded < ek) {
      return NodeError(node, "window ", ek, " (kernel ", k, ", dilation ", d,
                       ") is larger than the padded input ", padded,
                       " in spatial dim ", i, " of input ",
                       ShapeToString(input));
    }
    int64_t out = (padded - ek) / s + 1;
    if (ceil_mode) {
      out = (padded - ek + s - 1) / s + 1;
      if ((out - 1) * s >= in + pb) --out;
    }
    g.output.push_back(out);
    g.ceil_extra.push_back(std::max<int64_t>(0, (out - 1) * s + ek - padded));
  }
  return g;
}

namespace {

// OK when `shape` fits options.max_tensor_elements; `what` prefixes errors.
absl::Status CheckBudget(const std::string& what, const Shape& shape,
                         const ShapeOptions& options) {
  const std::optional<int64_t> n = CheckedProduct(shape);
  if (n && *n <= options.max_tensor_elements) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(what, ShapeToString(shape), " of ",
                   n ? absl::StrCat(*n) : std::string("more than 2^63"),
                   " elements exceeds the limit of ",
                   options.max_tensor_elements, " elements per tensor"));
}

}  // namespace

absl::StatusOr<std::map<std::string, std::vector<int64_t>>> InferShapes(
    const Graph& graph,
    const std::map<std::string, std::vector<int64_t>>& input_shapes,
    const ShapeOptions& options) {
  if (graph.outputs.empty()) {
    return absl::InvalidArgumentError("the graph has no outputs");
  }
  std::map<std::string, Shape> shapes;
  for (const auto& [name, tensor] : graph.constants) {
    if (!tensor.CheckedSize()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "constant '", name, "' has shape ", ShapeToString(tensor.shape),
          ", which is negative or overflows int64"));
    }
    if (auto s = CheckBudget(absl::StrCat("constant '", name, "' "),
                             tensor.shape, options);
        !s.ok()) {
      return s;
    }
    if (options.constant_data &&
        static_cast<int64_t>(tensor.data.size()) != tensor.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "constant '", name, "' has shape ", ShapeToString(tensor.shape),
          " but ", tensor.data.size(), " values"));
    }
    shapes[name] = tensor.shape;
  }
  std::set<std::string> declared;
  for (const ValueInfo& input : graph.inputs) {
    declared.insert(input.name);
    auto it = input_shapes.find(input.name);
    if (it == input_shapes.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no shape given for input '", input.name, "'"));
    }
    const Shape& shape = it->second;
    const bool negative = std::any_of(shape.begin(), shape.end(),
                                      [](int64_t d) { return d < 0; });
    if (negative || !Admits(input.shape, shape)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", input.name, "' has shape ", ShapeToString(shape),
          " but the graph expects ", ShapeToString(input.shape),
          " (-1 is the free batch dim)"));
    }
    if (auto s = CheckBudget(absl::StrCat("input '", input.name, "' "), shape,
                             options);
        !s.ok()) {
      return s;
    }
    shapes[input.name] = shape;
  }
  for (const auto& [name, shape] : input_shapes) {
    if (!declared.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape given for '", name, "', which is not an input of the graph"));
    }
  }

  for (const Node& node : graph.nodes) {
    if (auto s = CheckNodeArity(node); !s.ok()) return s;
    std::vector<const Shape*> in;
    for (const std::string& name : node.inputs) {
      auto it = shapes.find(name);
      if (it == shapes.end()) {
        return NodeError(node, "input '", name,
                         "' is not a graph input, a constant or the output of "
                         "an earlier node");
      }
      in.push_back(&it->second);
    }
    auto out = NodeShape(node, in);
    if (!out.ok()) return out.status();
    if (auto s = CheckBudget(absl::StrCat(NodePrefix(node), "output "), *out,
                             options);
        !s.ok()) {
      return s;
    }
    const std::string& name = node.outputs[0];
    if (!shapes.emplace(name, *std::move(out)).second) {
      return NodeError(node, "output '", name, "' is already defined");
    }
  }

  for (const ValueInfo& output : graph.outputs) {
    auto it = shapes.find(output.name);
    if (it == shapes.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "graph output '", output.name, "' is not produced by any node"));
    }
    if (!Admits(output.shape, it->second)) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", output.name, "' has shape ",
                       ShapeToString(it->second), " but the graph declares ",
                       ShapeToString(output.shape)));
    }
  }
  return shapes;
}

}  // namespace esb::graph
