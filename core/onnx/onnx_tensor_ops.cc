// Import of Split, Expand, Sum, Resize and LayerNormalization.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/graph/checked.h"
#include "core/graph/shapes.h"
#include "core/onnx/onnx_importer.h"

namespace esb::graph::internal {

absl::Status Importer::Crop(const onnx::NodeProto& n, const std::string& name,
                            const std::string& out,
                            const std::vector<int64_t>& x_shape,
                            const std::vector<int64_t>& begin,
                            const std::vector<int64_t>& count,
                            const std::vector<int64_t>& step) {
  const auto rank = static_cast<int64_t>(x_shape.size());
  if (const ConstValue* c = Const(n.input(0))) {
    ConstValue v;
    v.is_int = c->is_int;
    v.shape = count;
    if (Status s = CheckOutput(n, v.shape); !s.ok()) return s;
    const int64_t total = v.size();
    std::vector<int64_t> index(rank, 0);
    for (int64_t i = 0; i < total; ++i) {
      int64_t from = 0;
      for (int64_t d = 0; d < rank; ++d) {
        from = from * x_shape[d] + begin[d] +
               index[d] * (step.empty() ? 1 : step[d]);
      }
      if (v.is_int) {
        v.i.push_back(c->i[from]);
      } else {
        v.f.push_back(c->f[from]);
      }
      for (int64_t d = rank - 1; d >= 0 && ++index[d] == count[d]; --d) {
        index[d] = 0;
      }
    }
    return Store(out, std::move(v),
                 absl::StrCat("node '", current_name_, "' (", n.op_type(),
                              ") output '", out, "'"));
  }
  std::vector<int64_t> pads(2 * rank, 0);
  bool whole = true;
  for (int64_t d = 0; d < rank; ++d) {
    if (x_shape[d] == kUnknownDim) continue;  // The batch, taken whole.
    if (count[d] == 0) {
      return Fail(n, absl::StrCat("output '", out, "' takes nothing of axis ",
                                  d, " of input ", DimsText(x_shape),
                                  "; empty tensors are not supported"));
    }
    // A crop is a Pad with negative pads.
    pads[d] = -begin[d];
    pads[rank + d] = begin[d] + count[d] - x_shape[d];
    whole = whole && pads[d] == 0 && pads[rank + d] == 0;
  }
  if (whole) {
    alias_[out] = Resolve(n.input(0));
    return absl::OkStatus();
  }
  Node node;
  node.name = name;
  node.op = Op::kPad;
  node.inputs = {Resolve(n.input(0))};
  node.outputs = {out};
  node.attrs.pads = std::move(pads);
  node.attrs.value = 0.0f;
  graph_.nodes.push_back(std::move(node));
  return absl::OkStatus();
}

absl::Status Importer::ConvertSplit(const onnx::NodeProto& n) {
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr) return Fail(n, "the input's rank is unknown");
  const std::vector<int64_t> x_shape = *s;  // Shape() may be invalidated.
  const auto rank = static_cast<int64_t>(x_shape.size());
  int64_t axis = Int(n, "axis", 0);
  if (axis < -rank || axis >= rank) {
    return Fail(n, absl::StrCat("axis ", axis, " is outside the ", rank,
                                " dims of input ", DimsText(x_shape)));
  }
  if (axis < 0) axis += rank;
  const int64_t dim = x_shape[axis];
  if (dim == kUnknownDim) {
    return Fail(n, absl::StrCat("splits axis ", axis,
                                ", whose size is not known at import"));
  }
  // The parts: from the `split` input (opset 13) or attribute, else equal.
  std::vector<int64_t> parts = Ints(n, "split", {});
  if (opset_ >= 13 && HasInput(n, 1)) {
    absl::StatusOr<std::vector<int64_t>> p = IntsInput(n, 1, "split");
    if (!p.ok()) return p.status();
    parts = *std::move(p);
  }
  const int64_t outputs = n.output_size();
  if (parts.empty()) {
    if (dim % outputs != 0) {
      return Fail(
          n, absl::StrCat("axis ", axis, " of size ", dim,
                          " does not split into ", outputs, " equal parts"));
    }
    parts.assign(outputs, dim / outputs);
  }
  if (static_cast<int64_t>(parts.size()) != outputs) {
    return Fail(n, absl::StrCat("split has ", parts.size(), " parts for ",
                                outputs, " outputs"));
  }
  int64_t total = 0;
  for (int64_t p : parts) {
    if (p < 0 || p > dim) {
      return Fail(n, absl::StrCat("split part ", p, " is outside [0, ", dim,
                                  "] (axis ", axis, ")"));
    }
    total += p;  // At most outputs * dim: no overflow for real models.
  }
  if (total != dim) {
    return Fail(n, absl::StrCat("split parts ", DimsText(parts), " sum to ",
                                total, " but axis ", axis, " has ", dim));
  }
  std::vector<int64_t> begin(rank, 0);
  std::vector<int64_t> count = x_shape;
  for (int64_t k = 0; k < outputs; ++k) {
    count[axis] = parts[k];
    if (!n.output(k).empty()) {
      const std::string name =
          k == 0 ? current_name_
                 : UniqueName(absl::StrCat(current_name_, "/", k));
      if (Status st = Crop(n, name, n.output(k), x_shape, begin, count);
          !st.ok()) {
        return st;
      }
    }
    begin[axis] += parts[k];
  }
  return absl::OkStatus();
}

absl::Status Importer::ConvertExpand(const onnx::NodeProto& n) {
  absl::StatusOr<std::vector<int64_t>> target = IntsInput(n, 1, "shape");
  if (!target.ok()) return target.status();
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr) return Fail(n, "the input's rank is unknown");
  const std::vector<int64_t> x_shape = *s;
  // A target dim that is not known at import (the batch, from Shape) must
  // meet the input's batch, which it keeps: 1 says so to broadcasting.
  std::vector<int64_t> shape = *std::move(target);
  const size_t rank = std::max(shape.size(), x_shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t d = i + rank - shape.size();
    if (shape[i] == kUnknownDim) {
      const bool meets_batch =
          d >= rank - x_shape.size() &&
          x_shape[d - (rank - x_shape.size())] == kUnknownDim;
      if (!meets_batch) {
        return Fail(n, absl::StrCat("target dim ", i,
                                    " is not known at import and does not "
                                    "meet the input's batch"));
      }
      shape[i] = 1;
    } else if (shape[i] < 0) {
      return Fail(n, absl::StrCat("target shape ", DimsText(shape),
                                  " has a negative dim"));
    }
  }
  absl::StatusOr<std::vector<int64_t>> out = BroadcastShapes(x_shape, shape);
  if (!out.ok()) return Fail(n, out.status().message());
  if (const ConstValue* c = Const(n.input(0))) {
    if (Status st = CheckOutput(n, *out); !st.ok()) return st;
    ConstValue v;
    v.is_int = c->is_int;
    v.shape = *out;
    const int64_t total = v.size();
    const auto out_rank = static_cast<int64_t>(out->size());
    const int64_t lead = out_rank - static_cast<int64_t>(c->shape.size());
    std::vector<int64_t> index(out_rank, 0);
    for (int64_t i = 0; i < total; ++i) {
      int64_t from = 0;
      for (int64_t d = lead; d < out_rank; ++d) {
        const int64_t size = c->shape[d - lead];
        from = from * size + (size == 1 ? 0 : index[d]);
      }
      if (v.is_int) {
        v.i.push_back(c->i[from]);
      } else {
        v.f.push_back(c->f[from]);
      }
      for (int64_t d = out_rank - 1; d >= 0 && ++index[d] == v.shape[d]; --d) {
        index[d] = 0;
      }
    }
    return StoreOutput(n, std::move(v));
  }
  if (*out == x_shape) {  // Nothing to broadcast.
    alias_[n.output(0)] = Resolve(n.input(0));
    return absl::OkStatus();
  }
  Node& node = Emit(n, Op::kExpand);
  node.attrs.shape = std::move(shape);
  return absl::OkStatus();
}

absl::Status Importer::ConvertSum(const onnx::NodeProto& n) {
  if (n.input_size() == 1) {
    alias_[n.output(0)] = Resolve(n.input(0));
    return absl::OkStatus();
  }
  for (const std::string& in : n.input()) {
    const ConstValue* c = Const(in);
    if (c != nullptr && c->is_int) {
      return Fail(n, absl::StrCat("input '", in,
                                  "' is an integer constant; only float data "
                                  "is supported"));
    }
  }
  // A chain of Adds, which broadcast as Sum does.
  std::string acc = Resolve(n.input(0));
  for (int k = 1; k < n.input_size(); ++k) {
    Node node;
    const bool last = k + 1 == n.input_size();
    node.name = k == 1 ? current_name_
                       : UniqueName(absl::StrCat(current_name_, "/", k));
    node.op = Op::kAdd;
    node.inputs = {acc, Resolve(n.input(k))};
    node.outputs = {last ? n.output(0)
                         : absl::StrCat(n.output(0), "/partial", k)};
    acc = node.outputs[0];
    graph_.nodes.push_back(std::move(node));
  }
  return absl::OkStatus();
}

absl::Status Importer::ConvertResize(const onnx::NodeProto& n) {
  if (Const(n.input(0)) != nullptr) {
    return Fail(n,
                "its input is a constant; only computed tensors are "
                "supported here");
  }
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr || s->size() != 4) {
    return Fail(n, absl::StrCat("input has shape ",
                                s == nullptr ? "unknown" : DimsText(*s),
                                "; only 4-D (NCHW) inputs are supported"));
  }
  const std::vector<int64_t> x_shape = *s;
  ResizeMethod method;
  const std::string mode = String(n, "mode", "nearest");
  if (mode == "nearest") {
    method.mode = ResizeMethod::Mode::kNearest;
  } else if (mode == "linear") {
    method.mode = ResizeMethod::Mode::kLinear;
  } else {
    return Fail(n, absl::StrCat("mode '", mode,
                                "' is not supported (nearest and linear are)"));
  }
  const std::string coordinates =
      String(n, "coordinate_transformation_mode", "half_pixel");
  if (coordinates == "half_pixel") {
    method.coordinates = ResizeMethod::Coordinates::kHalfPixel;
  } else if (coordinates == "pytorch_half_pixel") {
    method.coordinates = ResizeMethod::Coordinates::kPytorchHalfPixel;
  } else if (coordinates == "align_corners") {
    method.coordinates = ResizeMethod::Coordinates::kAlignCorners;
  } else if (coordinates == "asymmetric") {
    method.coordinates = ResizeMethod::Coordinates::kAsymmetric;
  } else {
    return Fail(n, absl::StrCat("coordinate_transformation_mode '", coordinates,
                                "' is not supported (half_pixel, "
                                "pytorch_half_pixel, align_corners and "
                                "asymmetric are)"));
  }
  const std::string rounding = String(n, "nearest_mode", "round_prefer_floor");
  if (rounding == "round_prefer_floor") {
    method.rounding = ResizeMethod::Rounding::kRoundPreferFloor;
  } else if (rounding == "round_prefer_ceil") {
    method.rounding = ResizeMethod::Rounding::kRoundPreferCeil;
  } else if (rounding == "floor") {
    method.rounding = ResizeMethod::Rounding::kFloor;
  } else if (rounding == "ceil") {
    method.rounding = ResizeMethod::Rounding::kCeil;
  } else {
    return Fail(n, absl::StrCat("nearest_mode '", rounding, "' is unknown"));
  }

  // The output from `sizes` (input 3) or else `scales` (input 2).
  std::vector<float> scales(4, 1.0f);
  std::vector<int64_t> out = x_shape;
  const ConstValue* sizes = HasInput(n, 3) ? Const(n.input(3)) : nullptr;
  const ConstValue* given = HasInput(n, 2) ? Const(n.input(2)) : nullptr;
  if (HasInput(n, 3) && (sizes == nullptr || !sizes->is_int)) {
    return Fail(n, absl::StrCat("sizes (input 3, '", n.input(3),
                                "') must be a constant integer tensor"));
  }
  if (HasInput(n, 2) && (given == nullptr || given->is_int)) {
    return Fail(n, absl::StrCat("scales (input 2, '", n.input(2),
                                "') must be a constant float tensor"));
  }
  if (sizes != nullptr && sizes->size() == 0) sizes = nullptr;
  if (given != nullptr && given->size() == 0) given = nullptr;
  if ((sizes == nullptr) == (given == nullptr)) {
    return Fail(n, "exactly one of scales and sizes must be given");
  }
  if (sizes != nullptr) {
    if (sizes->size() != 4) {
      return Fail(
          n, absl::StrCat("sizes has ", sizes->size(), " values; 4 expected"));
    }
    for (size_t d = 0; d < 4; ++d) {
      const int64_t size = sizes->i[d];
      if (d < 2) {
        // N and C stay: as given, or not known at import (the batch).
        if (size != x_shape[d] && size != kUnknownDim) {
          return Fail(
              n, absl::StrCat("sizes ", DimsText(sizes->i), " resize dim ", d,
                              " of input ", DimsText(x_shape),
                              "; only H and W may change"));
        }
        continue;
      }
      if (size < 1 || size > options_.max_tensor_elements) {
        return Fail(n, absl::StrCat("output size ", size, " in dim ", d,
                                    " is outside [1, ",
                                    options_.max_tensor_elements, "]"));
      }
      out[d] = size;
      scales[d] = static_cast<float>(size) / static_cast<float>(x_shape[d]);
    }
  } else {
    if (given->size() != 4) {
      return Fail(
          n, absl::StrCat("scales has ", given->size(), " values; 4 expected"));
    }
    for (size_t d = 0; d < 4; ++d) {
      const float scale = given->f[d];
      if (d < 2) {
        if (scale != 1.0f) {
          return Fail(n, absl::StrCat("scale ", scale, " on dim ", d,
                                      "; only H and W may change"));
        }
        continue;
      }
      const double size = std::floor(static_cast<double>(x_shape[d]) * scale);
      if (!(scale > 0.0f) || !(size >= 1.0) ||
          size > static_cast<double>(options_.max_tensor_elements)) {
        return Fail(
            n, absl::StrCat("scale ", scale, " on dim ", d,
                            " gives output size ", size, " from ", x_shape[d]));
      }
      out[d] = static_cast<int64_t>(size);
      scales[d] = scale;
    }
  }
  if (Status st = CheckOutput(
          n, {std::max<int64_t>(x_shape[0], 1), x_shape[1], out[2], out[3]});
      !st.ok()) {
    return st;
  }
  if (out == x_shape && scales[2] == 1.0f && scales[3] == 1.0f) {
    alias_[n.output(0)] = Resolve(n.input(0));  // Every mode is exact here.
    return absl::OkStatus();
  }
  Node& node = Emit(n, Op::kResize);
  node.attrs.resize = method;
  node.attrs.scales = std::move(scales);
  node.attrs.shape = {out[2], out[3]};
  return absl::OkStatus();
}

absl::Status Importer::ConvertLayerNorm(const onnx::NodeProto& n) {
  if (Const(n.input(0)) != nullptr) {
    return Fail(n,
                "its input is a constant; only computed tensors are "
                "supported here");
  }
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr) return Fail(n, "the input's rank is unknown");
  const auto rank = static_cast<int64_t>(s->size());
  int64_t axis = Int(n, "axis", -1);
  if (axis < -rank || axis >= rank) {
    return Fail(n, absl::StrCat("axis ", axis, " is outside the ", rank,
                                " dims of input ", DimsText(*s)));
  }
  if (axis < 0) axis += rank;
  const std::vector<int64_t> normalized(s->begin() + axis, s->end());
  if (std::count(normalized.begin(), normalized.end(), kUnknownDim) > 0) {
    return Fail(n,
                "normalizes over the batch, whose size is not known at "
                "import");
  }
  for (int k = 1; k < std::min(n.input_size(), 3); ++k) {
    if (!HasInput(n, k)) continue;
    const ConstValue* c = Const(n.input(k));
    const char* what = k == 1 ? "scale" : "bias";
    if (c == nullptr || c->is_int) {
      return Fail(n, absl::StrCat(what, " (input ", k, ", '", n.input(k),
                                  "') must be a float constant"));
    }
    if (c->shape != normalized) {
      return Fail(n, absl::StrCat(what, " has shape ", DimsText(c->shape),
                                  " but the normalized dims are ",
                                  DimsText(normalized)));
    }
  }
  const float epsilon = Float(n, "epsilon", 1e-5f);
  Node& node = Emit(n, Op::kLayerNorm);
  node.inputs.push_back(Resolve(n.input(1)));
  if (HasInput(n, 2)) node.inputs.push_back(Resolve(n.input(2)));
  node.attrs.axis = axis;
  node.attrs.epsilon = epsilon;
  const bool mean_out = n.output_size() > 1 && !n.output(1).empty();
  const bool inv_std_out = n.output_size() > 2 && !n.output(2).empty();
  if (!mean_out && !inv_std_out) return absl::OkStatus();

  // The statistics outputs, when read, from their definition: Mean =
  // ReduceMean(x), InvStdDev = 1 / Sqrt(ReduceMean((x - Mean)^2) + epsilon)
  // over the normalized dims, kept as 1s.
  std::vector<int64_t> axes;
  for (int64_t d = axis; d < rank; ++d) axes.push_back(d);
  const std::string x = Resolve(n.input(0));
  const std::string& base = n.output(0);
  auto add = [&](Op op, std::vector<std::string> inputs,
                 const std::string& out) {
    Node stat;
    stat.name = UniqueName(absl::StrCat(current_name_, "/", out));
    stat.op = op;
    stat.inputs = std::move(inputs);
    stat.outputs = {out};
    if (op == Op::kReduceMean) {
      stat.attrs.axes = axes;
      stat.attrs.keep_dims = true;
    }
    graph_.nodes.push_back(std::move(stat));
  };
  auto scalar = [&](const std::string& name, float v) -> Status {
    ConstValue c;
    c.f = {v};
    return Store(
        name, std::move(c),
        absl::StrCat("node '", current_name_, "' constant '", name, "'"));
  };
  const std::string mean = mean_out ? n.output(1) : base + "/mean";
  add(Op::kReduceMean, {x}, mean);
  if (!inv_std_out) return absl::OkStatus();
  const std::string eps = base + "/epsilon";
  const std::string one = base + "/one";
  if (Status st = scalar(eps, epsilon); !st.ok()) return st;
  if (Status st = scalar(one, 1.0f); !st.ok()) return st;
  add(Op::kSub, {x, mean}, base + "/centered");
  add(Op::kMul, {base + "/centered", base + "/centered"}, base + "/square");
  add(Op::kReduceMean, {base + "/square"}, base + "/variance");
  add(Op::kAdd, {base + "/variance", eps}, base + "/variance_epsilon");
  add(Op::kSqrt, {base + "/variance_epsilon"}, base + "/std");
  add(Op::kDiv, {one, base + "/std"}, n.output(2));
  return absl::OkStatus();
}

}  // namespace esb::graph::internal
