// Importer methods for shape arithmetic (Shape, Gather, Cast,
// ConstantOfShape, and Add/Mul/Concat of constants, all evaluated here) and
// for the data-movement ops whose attributes come from it (Reshape,
// Squeeze/Unsqueeze, Concat, Softmax of old opsets, Pad).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/graph/checked.h"
#include "core/graph/shapes.h"
#include "core/onnx/onnx_importer.h"

namespace esb::graph::internal {

absl::Status Importer::ConvertShapeOp(const onnx::NodeProto& n) {
  const std::string& op = n.op_type();
  ConstValue out;
  if (op == "Shape") {
    const std::vector<int64_t>* s = Shape(n.input(0));
    if (s == nullptr) return Fail(n, "the input's rank is unknown");
    const auto rank = static_cast<int64_t>(s->size());
    int64_t start = Int(n, "start", 0);
    int64_t end = Int(n, "end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    out.is_int = true;
    out.i.assign(s->begin() + start, s->begin() + end);
    out.shape = {end - start};
  } else if (op == "Cast") {
    const int64_t to = Int(n, "to", 0);
    const bool to_float = to == onnx::TensorProto::FLOAT ||
                          to == onnx::TensorProto::DOUBLE ||
                          to == onnx::TensorProto::FLOAT16;
    const ConstValue* in = Const(n.input(0));
    if (in == nullptr) {
      if (to == onnx::TensorProto::FLOAT) {
        alias_[n.output(0)] = Resolve(n.input(0));
        return absl::OkStatus();
      }
      return Fail(
          n, absl::StrCat("casting a computed tensor to ",
                          onnx::TensorProto::DataType_Name(
                              static_cast<onnx::TensorProto::DataType>(to)),
                          " is not supported"));
    }
    out.shape = in->shape;
    out.is_int = !to_float;
    if (to_float) {
      if (in->is_int) {
        for (int64_t x : in->i) out.f.push_back(static_cast<float>(x));
      } else {
        out.f = in->f;
      }
    } else if (in->is_int) {
      out.i = in->i;
    } else {
      for (float x : in->f) out.i.push_back(static_cast<int64_t>(x));
    }
  } else if (op == "ConstantOfShape") {
    auto dims = IntsInput(n, 0, "shape");
    if (!dims.ok()) return dims.status();
    for (int64_t d : *dims) {
      if (d < 0) {
        return Fail(n, absl::StrCat("shape ", DimsText(*dims),
                                    " is not fully known at import"));
      }
    }
    out.shape = *dims;
    if (Status s = CheckOutput(n, out.shape); !s.ok()) return s;
    ConstValue fill;
    fill.f = {0.0f};
    if (const auto* a = Attr(n, "value")) {
      auto c = internal::FromTensorProto(
          a->t(),
          absl::StrCat("node '", current_name_, "' (ConstantOfShape) value"),
          options_.max_tensor_elements);
      if (!c.ok()) return c.status();
      fill = *std::move(c);
    }
    out.is_int = fill.is_int;
    if (fill.is_int) {
      out.i.assign(out.size(), fill.i.empty() ? 0 : fill.i[0]);
    } else {
      out.f.assign(out.size(), fill.f.empty() ? 0.0f : fill.f[0]);
    }
  } else {  // Gather
    const ConstValue* data = Const(n.input(0));
    if (data == nullptr) {
      return Fail(n,
                  "gathering from a computed tensor is not supported; "
                  "only constant (shape) data is");
    }
    auto indices = IntsInput(n, 1, "indices");
    if (!indices.ok()) return indices.status();
    const ConstValue* ind = Const(n.input(1));
    const auto rank = static_cast<int64_t>(data->shape.size());
    int64_t axis = Int(n, "axis", 0);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) {
      return Fail(n, absl::StrCat("axis is out of range for rank ", rank));
    }
    // data is a checked constant: these products fit.
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= data->shape[d];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= data->shape[d];
    const int64_t extent = data->shape[axis];
    out.is_int = data->is_int;
    out.shape.assign(data->shape.begin(), data->shape.begin() + axis);
    out.shape.insert(out.shape.end(), ind->shape.begin(), ind->shape.end());
    out.shape.insert(out.shape.end(), data->shape.begin() + axis + 1,
                     data->shape.end());
    if (Status s = CheckOutput(n, out.shape); !s.ok()) return s;
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t idx : *indices) {
        if (idx < 0) idx += extent;
        if (idx < 0 || idx >= extent) {
          return Fail(n, absl::StrCat("index ", idx, " of indices '",
                                      n.input(1), "' is out of range [",
                                      -extent, ", ", extent, ")"));
        }
        const int64_t base = (o * extent + idx) * inner;
        for (int64_t k = 0; k < inner; ++k) {
          if (data->is_int) {
            out.i.push_back(data->i[base + k]);
          } else {
            out.f.push_back(data->f[base + k]);
          }
        }
      }
    }
  }
  return StoreOutput(n, std::move(out));
}

const std::vector<int64_t>* Importer::InferredShape(const std::string& name) {
  const std::string value = Resolve(name);
  if (defined_.count(name) == 0 || uninferred_.count(value) > 0) return nullptr;
  // A value inference cannot shape stays so: its nodes are final.
  uninferred_.insert(value);
  Graph probe;
  probe.inputs = graph_.inputs;
  probe.nodes = graph_.nodes;
  probe.outputs = {ValueInfo{value, {}}};
  for (const Node& node : probe.nodes) {
    for (const std::string& in : node.inputs) {
      if (const ConstValue* c = Const(in)) probe.constants[in].shape = c->shape;
    }
  }
  ShapeOptions shape_options;
  shape_options.max_tensor_elements = options_.max_tensor_elements;
  shape_options.constant_data = false;
  std::vector<int64_t> dims;
  for (int64_t batch : {1, 2}) {
    std::map<std::string, std::vector<int64_t>> given;
    for (const ValueInfo& in : graph_.inputs) {
      std::vector<int64_t> d = in.shape;
      std::replace(d.begin(), d.end(), kBatch, batch);
      given[in.name] = d;
    }
    auto shapes = InferShapes(probe, given, shape_options);
    if (!shapes.ok()) return nullptr;
    auto it = shapes->find(value);
    if (it == shapes->end()) return nullptr;
    if (batch == 1) {
      dims = it->second;
      continue;
    }
    if (it->second.size() != dims.size()) return nullptr;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (it->second[d] != dims[d]) dims[d] = kUnknownDim;
    }
  }
  uninferred_.erase(value);
  return &(shapes_[name] = std::move(dims));
}

absl::Status Importer::ConvertReshape(const onnx::NodeProto& n) {
  auto target = IntsInput(n, 1, "shape");
  if (!target.ok()) return target.status();
  if (Int(n, "allowzero", 0) != 0 &&
      std::count(target->begin(), target->end(), 0) > 0) {
    return Fail(n, "allowzero with zero-sized dimensions is not supported");
  }
  if (const ConstValue* data = Const(n.input(0))) {
    // Reshape of a constant: resolve and fold.
    ConstValue out = *data;
    int64_t known = 1, infer = -1;
    out.shape = *target;
    const std::string cannot = absl::StrCat(
        "cannot reshape ", DimsText(data->shape), " to ", DimsText(*target));
    for (size_t d = 0; d < out.shape.size(); ++d) {
      if (out.shape[d] == 0) {
        if (d >= data->shape.size()) {
          return Fail(n, absl::StrCat(cannot, ": dim ", d,
                                      " copies a dim the input lacks"));
        }
        out.shape[d] = data->shape[d];
      }
      if (out.shape[d] == -1 && infer < 0) {
        infer = static_cast<int64_t>(d);
        continue;
      }
      std::optional<int64_t> next =
          out.shape[d] < 0 ? std::nullopt : CheckedMul(known, out.shape[d]);
      if (!next) return Fail(n, cannot);
      known = *next;
    }
    if (infer >= 0) {
      if (known == 0 || data->size() % known != 0) return Fail(n, cannot);
      out.shape[infer] = data->size() / known;
    }
    if (out.size() != data->size()) return Fail(n, cannot);
    return StoreOutput(n, std::move(out));
  }
  std::vector<int64_t> shape = *target;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] != kUnknownDim) continue;
    if (d != 0) {
      return Fail(n, absl::StrCat("target shape ", DimsText(shape),
                                  " depends on a run-time dimension other "
                                  "than the batch"));
    }
    shape[d] = 0;  // Copy the batch from the input.
  }
  Node& node = Emit(n, Op::kReshape);
  node.attrs.shape = shape;
  return absl::OkStatus();
}

absl::Status Importer::ConvertSqueeze(const onnx::NodeProto& n,
                                      bool unsqueeze) {
  std::vector<int64_t> axes = Ints(n, "axes", {});
  if (opset_ >= 13 && HasInput(n, 1)) {
    auto a = IntsInput(n, 1, "axes");
    if (!a.ok()) return a.status();
    axes = *a;
  }
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr) return Fail(n, "the input's rank is unknown");
  std::vector<int64_t> shape = *s;
  const auto out_rank = static_cast<int64_t>(
      unsqueeze ? shape.size() + axes.size() : shape.size());
  for (int64_t& a : axes) {
    if (a < 0) a += unsqueeze ? out_rank : static_cast<int64_t>(shape.size());
  }
  std::sort(axes.begin(), axes.end());
  if (unsqueeze) {
    for (int64_t a : axes) {
      if (a < 0 || a > static_cast<int64_t>(shape.size())) {
        return Fail(n, "axes out of range");
      }
      shape.insert(shape.begin() + a, 1);
    }
  } else {
    if (axes.empty()) {
      for (size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) axes.push_back(static_cast<int64_t>(d));
      }
    }
    for (auto it = axes.rbegin(); it != axes.rend(); ++it) {
      if (*it < 0 || *it >= static_cast<int64_t>(shape.size()) ||
          shape[*it] != 1) {
        return Fail(
            n, absl::StrCat("cannot squeeze axis ", *it, " of ", DimsText(*s)));
      }
      shape.erase(shape.begin() + *it);
    }
  }
  if (const ConstValue* data = Const(n.input(0))) {
    ConstValue out = *data;
    out.shape = shape;
    return StoreOutput(n, std::move(out));
  }
  // On a computed tensor it is a reshape; the batch (dim 0) is copied.
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] != kUnknownDim) continue;
    if (d != 0 || (*s)[0] != kUnknownDim) {
      return Fail(n, "moves a run-time dimension");
    }
    shape[d] = 0;
  }
  Emit(n, Op::kReshape).attrs.shape = shape;
  return absl::OkStatus();
}

absl::Status Importer::ConvertConcat(const onnx::NodeProto& n) {
  const std::vector<int64_t>* s0 = Shape(n.input(0));
  int64_t axis = Int(n, "axis", 0);
  if (axis < 0) {
    if (s0 == nullptr) return Fail(n, "negative axis on an unknown rank");
    axis += static_cast<int64_t>(s0->size());
  }
  bool all_const = true;
  for (const std::string& in : n.input()) all_const &= Const(in) != nullptr;
  if (!all_const) {
    Node& node = Emit(n, Op::kConcat);
    node.attrs.axis = axis;
    for (int i = 1; i < n.input_size(); ++i) {
      node.inputs.push_back(Resolve(n.input(i)));
    }
    return absl::OkStatus();
  }
  // Constants (shape arithmetic): fold.
  const ConstValue* first = Const(n.input(0));
  ConstValue out;
  out.is_int = first->is_int;
  out.shape = first->shape;
  if (axis < 0 || axis >= static_cast<int64_t>(out.shape.size())) {
    return Fail(n, "axis out of range");
  }
  out.shape[axis] = 0;
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= out.shape[d];
  for (const std::string& in : n.input()) {
    const ConstValue* c = Const(in);
    if (c->is_int != out.is_int || c->shape.size() != out.shape.size()) {
      return Fail(n, "inputs differ in type or rank");
    }
    for (size_t d = 0; d < out.shape.size(); ++d) {
      if (d != static_cast<size_t>(axis) && c->shape[d] != out.shape[d]) {
        return Fail(
            n, absl::StrCat("input '", in, "' has shape ", DimsText(c->shape),
                            " but input 0 has ", DimsText(first->shape),
                            " (axis ", axis, ")"));
      }
    }
    std::optional<int64_t> sum = CheckedAdd(out.shape[axis], c->shape[axis]);
    if (!sum) return CheckOutput(n, {std::numeric_limits<int64_t>::max(), 2});
    out.shape[axis] = *sum;
  }
  if (Status s = CheckOutput(n, out.shape); !s.ok()) return s;
  for (int64_t o = 0; o < outer; ++o) {
    for (const std::string& in : n.input()) {
      const ConstValue* c = Const(in);
      const int64_t chunk = outer == 0 ? 0 : c->size() / outer;
      for (int64_t k = 0; k < chunk; ++k) {
        if (c->is_int) {
          out.i.push_back(c->i[o * chunk + k]);
        } else {
          out.f.push_back(c->f[o * chunk + k]);
        }
      }
    }
  }
  return StoreOutput(n, std::move(out));
}

absl::Status Importer::ConvertBinary(const onnx::NodeProto& n, Op op) {
  const ConstValue* a = Const(n.input(0));
  const ConstValue* b = Const(n.input(1));
  if (a != nullptr && b != nullptr && a->is_int == b->is_int &&
      (a->size() == b->size() || a->size() == 1 || b->size() == 1)) {
    // Both constant (shape arithmetic or folded weights): evaluate.
    // Of the broadcast shape: the larger rank, size 1 or the common size.
    absl::StatusOr<std::vector<int64_t>> shape =
        BroadcastShapes(a->shape, b->shape);
    if (!shape.ok()) return Fail(n, shape.status().message());
    ConstValue out;
    out.is_int = a->is_int;
    out.shape = *std::move(shape);
    const int64_t size = std::max(a->size(), b->size());
    if (CheckedProduct(out.shape) != size) {
      return Fail(
          n, absl::StrCat("constant operands of shapes ", DimsText(a->shape),
                          " and ", DimsText(b->shape),
                          " broadcast to more values than either "
                          "holds; only elementwise or scalar "
                          "operands fold"));
    }
    for (int64_t k = 0; k < size; ++k) {
      const int64_t ka = a->size() == 1 ? 0 : k;
      const int64_t kb = b->size() == 1 ? 0 : k;
      if (out.is_int) {
        const int64_t x = a->i[ka], y = b->i[kb];
        if (x == kUnknownDim || y == kUnknownDim) {
          out.i.push_back(kUnknownDim);
          continue;
        }
        std::optional<int64_t> r;
        const char* sign = " + ";
        switch (op) {
          case Op::kAdd:
            r = CheckedAdd(x, y);
            break;
          case Op::kMul:
            sign = " * ";
            r = CheckedMul(x, y);
            break;
          case Op::kSub:
            sign = " - ";
            r = CheckedSub(x, y);
            break;
          case Op::kPow:
            return Fail(n, "integer Pow is not supported");
          default:  // kDiv: ONNX integer division truncates.
            sign = " / ";
            if (y == 0) return Fail(n, absl::StrCat("integer ", x, " / 0"));
            if (x != std::numeric_limits<int64_t>::min() || y != -1) {
              r = x / y;
            }
            break;
        }
        if (!r) {
          return Fail(n,
                      absl::StrCat("integer ", x, sign, y, " overflows int64"));
        }
        out.i.push_back(*r);
      } else {
        const float x = a->f[ka], y = b->f[kb];
        out.f.push_back(op == Op::kAdd   ? x + y
                        : op == Op::kMul ? x * y
                        : op == Op::kSub ? x - y
                        : op == Op::kPow ? static_cast<float>(std::pow(
                                               static_cast<double>(x), y))
                                         : x / y);
      }
    }
    return StoreOutput(n, std::move(out));
  }
  if ((a != nullptr && a->is_int) || (b != nullptr && b->is_int)) {
    return Fail(n, "mixes integer constants with computed tensors");
  }
  Node& node = Emit(n, op);
  node.inputs.push_back(Resolve(n.input(1)));
  return absl::OkStatus();
}

absl::Status Importer::ConvertSoftmax(const onnx::NodeProto& n) {
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr) return Fail(n, "the input's rank is unknown");
  const auto rank = static_cast<int64_t>(s->size());
  int64_t axis = Int(n, "axis", opset_ < 13 ? 1 : -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return Fail(n, "axis out of range");
  if (opset_ >= 13 || axis == rank - 1) {
    Emit(n, Op::kSoftmax).attrs.axis = axis;
    return absl::OkStatus();
  }
  // Opsets < 13 normalise over all dims from `axis` on, as one: flatten to
  // 2-D, softmax along axis 1, restore the shape.
  std::vector<int64_t> restore = *s;
  for (size_t d = 0; d < restore.size(); ++d) {
    if (restore[d] != kUnknownDim) continue;
    if (d != 0) return Fail(n, "needs a static shape beyond the batch");
    restore[d] = 0;
  }
  const std::string flat = absl::StrCat(n.output(0), "/flat");
  const std::string soft = absl::StrCat(n.output(0), "/softmax");
  Node f{absl::StrCat(current_name_, "/flatten"),
         Op::kFlatten,
         {Resolve(n.input(0))},
         {flat},
         {}};
  f.attrs.axis = axis;
  Node m{current_name_, Op::kSoftmax, {flat}, {soft}, {}};
  m.attrs.axis = 1;
  Node r{absl::StrCat(current_name_, "/reshape"),
         Op::kReshape,
         {soft},
         {n.output(0)},
         {}};
  r.attrs.shape = restore;
  graph_.nodes.push_back(std::move(f));
  graph_.nodes.push_back(std::move(m));
  graph_.nodes.push_back(std::move(r));
  return absl::OkStatus();
}

absl::Status Importer::ConvertPad(const onnx::NodeProto& n) {
  const std::string mode = String(n, "mode", "constant");
  if (mode != "constant") {
    return Fail(n, absl::StrCat("mode '", mode,
                                "' is not supported; only "
                                "constant padding is"));
  }
  std::vector<int64_t> pads = Ints(n, "pads", {});
  float value = Float(n, "value", 0.0f);
  if (opset_ >= 11) {
    auto p = IntsInput(n, 1, "pads");
    if (!p.ok()) return p.status();
    pads = *p;
    if (HasInput(n, 2)) {
      auto v = ScalarInput(n, 2, "constant_value");
      if (!v.ok()) return v.status();
      value = *v;
    }
    if (HasInput(n, 3)) return Fail(n, "the axes input is not supported");
  }
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s != nullptr && pads.size() != 2 * s->size()) {
    return Fail(n, absl::StrCat("pads has ", pads.size(),
                                " values for an "
                                "input of rank ",
                                s->size()));
  }
  for (int64_t p : pads) {
    if (p < 0) return Fail(n, "negative pads (cropping) are not supported");
  }
  if (std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; })) {
    // Nothing to pad (torch writes one before each AveragePool).
    alias_[n.output(0)] = Resolve(n.input(0));
    return absl::OkStatus();
  }
  Node& node = Emit(n, Op::kPad);
  node.attrs.pads = pads;
  node.attrs.value = value;
  return absl::OkStatus();
}

absl::Status Importer::ConvertSlice(const onnx::NodeProto& n) {
  if (opset_ < 10) return Fail(n, "Slice before opset 10 is not supported");
  const std::vector<int64_t>* s = Shape(n.input(0));
  if (s == nullptr) return Fail(n, "the input's rank is unknown");
  const auto rank = static_cast<int64_t>(s->size());
  absl::StatusOr<std::vector<int64_t>> starts = IntsInput(n, 1, "starts");
  if (!starts.ok()) return starts.status();
  absl::StatusOr<std::vector<int64_t>> ends = IntsInput(n, 2, "ends");
  if (!ends.ok()) return ends.status();
  std::vector<int64_t> axes;
  if (HasInput(n, 3)) {
    absl::StatusOr<std::vector<int64_t>> a = IntsInput(n, 3, "axes");
    if (!a.ok()) return a.status();
    axes = *std::move(a);
  } else {
    for (size_t d = 0; d < starts->size(); ++d) {
      axes.push_back(static_cast<int64_t>(d));
    }
  }
  std::vector<int64_t> steps(axes.size(), 1);
  if (HasInput(n, 4)) {
    absl::StatusOr<std::vector<int64_t>> st = IntsInput(n, 4, "steps");
    if (!st.ok()) return st.status();
    steps = *std::move(st);
  }
  if (starts->size() != axes.size() || ends->size() != axes.size() ||
      steps.size() != axes.size()) {
    return Fail(
        n, absl::StrCat("starts, ends, axes and steps have ", starts->size(),
                        ", ", ends->size(), ", ", axes.size(), " and ",
                        steps.size(), " values; they must agree"));
  }
  // Per dim: the first index taken, the count taken, the step.
  std::vector<int64_t> begin(rank, 0), count = *s, step(rank, 1);
  std::vector<bool> seen(rank, false);
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t a = axes[k];
    if (a < -rank || a >= rank) {
      return Fail(n, absl::StrCat("axis ", a, " is outside the ", rank,
                                  " dims of input ", DimsText(*s)));
    }
    if (a < 0) a += rank;
    if (seen[a]) return Fail(n, absl::StrCat("axis ", a, " is named twice"));
    seen[a] = true;
    if (steps[k] < 1) {
      return Fail(n, absl::StrCat("step ", steps[k], " on axis ", a,
                                  "; only positive steps are supported"));
    }
    const int64_t dim = (*s)[a];
    const int64_t big = std::numeric_limits<int64_t>::max();
    if (dim == kUnknownDim) {
      // The batch: only the whole of it.
      if ((*starts)[k] != 0 || (*ends)[k] < big / 2 || steps[k] != 1) {
        return Fail(n, absl::StrCat("slices axis ", a,
                                    ", whose size is not known at import"));
      }
      continue;
    }
    auto clamp = [dim](int64_t v) {
      if (v < 0) v = v < -dim ? 0 : v + dim;
      return std::min(v, dim);
    };
    const int64_t lo = clamp((*starts)[k]);
    const int64_t hi = std::max(lo, clamp((*ends)[k]));
    begin[a] = lo;
    step[a] = steps[k];
    count[a] = (hi - lo + steps[k] - 1) / steps[k];
  }
  for (int64_t d = 0; Const(n.input(0)) == nullptr && d < rank; ++d) {
    if (step[d] != 1) {
      return Fail(n, absl::StrCat("step ", step[d], " on axis ", d,
                                  " of a computed tensor; only step 1 is "
                                  "supported there"));
    }
  }
  const std::vector<int64_t> x_shape = *s;
  return Crop(n, current_name_, n.output(0), x_shape, begin, count, step);
}

// INVALID_ARGUMENT naming every node whose op is not supported, or OK.
}  // namespace esb::graph::internal
