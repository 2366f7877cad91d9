#include "core/graph/onnx_import.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/graph/onnx_tensor.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"

namespace esb::graph {
namespace {

using internal::ConstValue;
using internal::kUnknownDim;

constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 17;

const std::set<std::string>& SupportedOps() {
  static const auto* ops = new std::set<std::string>{"Conv",
                                                     "Gemm",
                                                     "MatMul",
                                                     "BatchNormalization",
                                                     "Relu",
                                                     "Clip",
                                                     "LeakyRelu",
                                                     "Sigmoid",
                                                     "MaxPool",
                                                     "AveragePool",
                                                     "GlobalAveragePool",
                                                     "Add",
                                                     "Mul",
                                                     "Concat",
                                                     "Flatten",
                                                     "Reshape",
                                                     "Transpose",
                                                     "Softmax",
                                                     "Identity",
                                                     "Dropout",
                                                     "Pad",
                                                     "Constant",
                                                     "Shape",
                                                     "Gather",
                                                     "Unsqueeze",
                                                     "Squeeze",
                                                     "Cast",
                                                     "ConstantOfShape"};
  return *ops;
}

std::string DimsText(const std::vector<int64_t>& dims) {
  std::vector<std::string> parts;
  for (int64_t d : dims) {
    parts.push_back(d == kUnknownDim ? "?" : absl::StrCat(d));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

class Importer {
 public:
  Importer(const onnx::ModelProto& model, int64_t opset)
      : model_(model), opset_(opset) {}

  absl::StatusOr<Graph> Run();

 private:
  using Status = absl::Status;

  Status Fail(const onnx::NodeProto& n, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("node '", current_name_, "' (", n.op_type(), "): ", what));
  }

  // Attributes.
  const onnx::AttributeProto* Attr(const onnx::NodeProto& n,
                                   absl::string_view name) const {
    for (const auto& a : n.attribute()) {
      if (a.name() == name) return &a;
    }
    return nullptr;
  }
  int64_t Int(const onnx::NodeProto& n, absl::string_view name,
              int64_t dflt) const {
    const auto* a = Attr(n, name);
    return a ? a->i() : dflt;
  }
  float Float(const onnx::NodeProto& n, absl::string_view name,
              float dflt) const {
    const auto* a = Attr(n, name);
    return a ? a->f() : dflt;
  }
  std::string String(const onnx::NodeProto& n, absl::string_view name,
                     const std::string& dflt) const {
    const auto* a = Attr(n, name);
    return a ? a->s() : dflt;
  }
  std::vector<int64_t> Ints(const onnx::NodeProto& n, absl::string_view name,
                            std::vector<int64_t> dflt) const {
    const auto* a = Attr(n, name);
    if (a == nullptr) return dflt;
    return std::vector<int64_t>(a->ints().begin(), a->ints().end());
  }

  std::string Resolve(const std::string& name) const {
    std::string n = name;
    for (auto it = alias_.find(n); it != alias_.end(); it = alias_.find(n)) {
      n = it->second;
    }
    return n;
  }
  const ConstValue* Const(const std::string& name) const {
    auto it = consts_.find(Resolve(name));
    return it == consts_.end() ? nullptr : &it->second;
  }
  // Static shape of a value; kUnknownDim where shape inference left a dim
  // open. Empty optional when the rank is unknown.
  const std::vector<int64_t>* Shape(const std::string& name) const {
    if (const ConstValue* c = Const(name)) return &c->shape;
    auto it = shapes_.find(name);
    if (it != shapes_.end()) return &it->second;
    it = shapes_.find(Resolve(name));
    return it == shapes_.end() ? nullptr : &it->second;
  }
  bool HasInput(const onnx::NodeProto& n, int i) const {
    return n.input_size() > i && !n.input(i).empty();
  }

  absl::StatusOr<std::vector<int64_t>> IntsInput(const onnx::NodeProto& n,
                                                 int i,
                                                 absl::string_view what) {
    const ConstValue* c = Const(n.input(i));
    if (c == nullptr || !c->is_int) {
      return Fail(n, absl::StrCat(what, " (input ", i, ", '", n.input(i),
                                  "') must be a constant integer tensor"));
    }
    return c->i;
  }
  absl::StatusOr<float> ScalarInput(const onnx::NodeProto& n, int i,
                                    absl::string_view what) {
    const ConstValue* c = Const(n.input(i));
    if (c == nullptr || c->size() != 1) {
      return Fail(n, absl::StrCat(what, " (input ", i, ", '", n.input(i),
                                  "') must be a constant scalar"));
    }
    return c->is_int ? static_cast<float>(c->i[0]) : c->f[0];
  }

  Node& Emit(const onnx::NodeProto& n, Op op) {
    Node node;
    node.name = current_name_;
    node.op = op;
    node.inputs.push_back(Resolve(n.input(0)));
    node.outputs.push_back(n.output(0));
    graph_.nodes.push_back(std::move(node));
    return graph_.nodes.back();
  }

  Status Convert(const onnx::NodeProto& n);
  Status ConvertConstant(const onnx::NodeProto& n);
  Status ConvertShapeOp(const onnx::NodeProto& n);
  Status ConvertConvOrPool(const onnx::NodeProto& n);
  Status ConvertReshape(const onnx::NodeProto& n);
  Status ConvertSqueeze(const onnx::NodeProto& n, bool unsqueeze);
  Status ConvertConcat(const onnx::NodeProto& n);
  Status ConvertBinary(const onnx::NodeProto& n, Op op);
  Status ConvertSoftmax(const onnx::NodeProto& n);
  Status ConvertPad(const onnx::NodeProto& n);
  // Explicit spatial pads for `auto_pad`, from the input's static shape.
  absl::StatusOr<std::vector<int64_t>> SpatialPads(
      const onnx::NodeProto& n, const std::vector<int64_t>& kernel,
      const std::vector<int64_t>& strides,
      const std::vector<int64_t>& dilations);

  Status FinishOutputs();
  void RemoveDeadNodes();

  const onnx::ModelProto& model_;
  int64_t opset_;
  std::map<std::string, ConstValue> consts_;
  std::map<std::string, std::string> alias_;
  std::map<std::string, std::vector<int64_t>> shapes_;
  std::set<std::string> read_;  // Values read by a node or a graph output.
  std::string current_name_;
  Graph graph_;
};

std::vector<int64_t> ShapeOf(const onnx::TypeProto& type) {
  std::vector<int64_t> dims;
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return dims;
  for (const auto& d : type.tensor_type().shape().dim()) {
    dims.push_back(d.has_dim_value() ? d.dim_value() : kUnknownDim);
  }
  return dims;
}

absl::StatusOr<Graph> Importer::Run() {
  const onnx::GraphProto& g = model_.graph();
  graph_.opset = opset_;
  for (const auto& prop : model_.metadata_props()) {
    graph_.metadata[prop.key()] = prop.value();
  }

  for (const auto& t : g.initializer()) {
    auto c = internal::FromTensorProto(
        t, absl::StrCat("initializer '", t.name(), "'"));
    if (!c.ok()) return c.status();
    consts_[t.name()] = *std::move(c);
  }
  for (const auto& n : g.node()) {
    read_.insert(n.input().begin(), n.input().end());
  }
  for (const auto& vi : g.output()) read_.insert(vi.name());
  for (const auto& vi : g.value_info()) shapes_[vi.name()] = ShapeOf(vi.type());
  for (const auto& vi : g.output()) shapes_[vi.name()] = ShapeOf(vi.type());
  for (const auto& vi : g.input()) {
    if (consts_.count(vi.name())) continue;  // An initializer with a default.
    const auto& tt = vi.type().tensor_type();
    if (!vi.type().has_tensor_type() ||
        tt.elem_type() != onnx::TensorProto::FLOAT) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", vi.name(), "' has type ",
                       onnx::TensorProto::DataType_Name(tt.elem_type()),
                       "; only float32 inputs are supported"));
    }
    std::vector<int64_t> dims = ShapeOf(vi.type());
    if (!tt.has_shape()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", vi.name(),
                       "' has no shape; a static shape (batch "
                       "excepted) is required"));
    }
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] != kUnknownDim) continue;
      if (d != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", vi.name(), "' dimension ", d, " is not fixed (shape ",
            DimsText(dims), "); only the batch dimension may be free"));
      }
    }
    shapes_[vi.name()] = dims;
    std::replace(dims.begin(), dims.end(), kUnknownDim, kBatch);
    graph_.inputs.push_back(ValueInfo{vi.name(), dims});
  }

  std::set<std::string> names;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    current_name_ =
        n.name().empty() ? absl::StrCat(n.op_type(), "_", i) : n.name();
    while (!names.insert(current_name_).second) current_name_ += "_";
    if (n.input_size() == 0 && n.op_type() != "Constant") {
      return Fail(n, "has no inputs");
    }
    if (Status s = Convert(n); !s.ok()) return s;
  }
  if (Status s = FinishOutputs(); !s.ok()) return s;
  RemoveDeadNodes();

  // Float constants that remaining nodes read.
  for (const Node& node : graph_.nodes) {
    for (const std::string& in : node.inputs) {
      auto it = consts_.find(in);
      if (it == consts_.end()) continue;
      if (it->second.is_int) {
        return absl::InvalidArgumentError(
            absl::StrCat("node '", node.name, "' (", OpName(node.op),
                         ") reads integer "
                         "tensor '",
                         in, "' as data; only float data is supported"));
      }
      graph_.constants[in] = Tensor{it->second.shape, it->second.f};
    }
  }
  return std::move(graph_);
}

absl::Status Importer::FinishOutputs() {
  for (const auto& vi : model_.graph().output()) {
    const std::string source = Resolve(vi.name());
    std::vector<int64_t> dims;
    if (const std::vector<int64_t>* s = Shape(vi.name())) dims = *s;
    std::replace(dims.begin(), dims.end(), kUnknownDim, kBatch);
    if (const ConstValue* c = Const(vi.name()); c && c->is_int) {
      return absl::InvalidArgumentError(
          absl::StrCat("output '", vi.name(),
                       "' is an integer tensor; only float outputs "
                       "are supported"));
    }
    std::string from = source;
    if (from == vi.name() && Const(from) != nullptr) {
      // A folded constant is the output: an Identity reads a renamed copy,
      // so that a node produces every output.
      from = absl::StrCat(vi.name(), "/value");
      consts_[from] = consts_.at(source);
    }
    if (from != vi.name()) {
      Node id;
      id.name = absl::StrCat(vi.name(), "/output");
      id.op = Op::kIdentity;
      id.inputs = {from};
      id.outputs = {vi.name()};
      graph_.nodes.push_back(std::move(id));
    }
    graph_.outputs.push_back(ValueInfo{vi.name(), dims});
  }
  return absl::OkStatus();
}

void Importer::RemoveDeadNodes() {
  std::set<std::string> live;
  for (const ValueInfo& o : graph_.outputs) live.insert(o.name);
  std::vector<Node> kept;
  for (auto it = graph_.nodes.rbegin(); it != graph_.nodes.rend(); ++it) {
    const bool needed =
        std::any_of(it->outputs.begin(), it->outputs.end(),
                    [&](const std::string& o) { return live.count(o) > 0; });
    if (!needed) continue;
    for (const std::string& in : it->inputs) live.insert(in);
    kept.push_back(std::move(*it));
  }
  std::reverse(kept.begin(), kept.end());
  graph_.nodes = std::move(kept);
}

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
      if (training == nullptr || (training->is_int && training->i[0] != 0)) {
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
  if (op == "Softmax") return ConvertSoftmax(n);
  if (op == "Pad") return ConvertPad(n);

  if (Const(n.input(0)) != nullptr && op != "Gemm" && op != "MatMul") {
    return Fail(n,
                "its input is a constant; only computed tensors are "
                "supported here");
  }
  if (op == "Relu") {
    Emit(n, Op::kRelu);
  } else if (op == "Sigmoid") {
    Emit(n, Op::kSigmoid);
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
        a->t(), absl::StrCat("node '", current_name_, "' value"));
    if (!c.ok()) return c.status();
    v = *std::move(c);
  } else if (const auto* a = Attr(n, "value_float")) {
    v.f = {a->f()};
  } else if (const auto* a = Attr(n, "value_floats")) {
    v.f.assign(a->floats().begin(), a->floats().end());
    v.shape = {static_cast<int64_t>(v.f.size())};
  } else if (const auto* a = Attr(n, "value_int")) {
    v.is_int = true;
    v.i = {a->i()};
  } else if (const auto* a = Attr(n, "value_ints")) {
    v.is_int = true;
    v.i.assign(a->ints().begin(), a->ints().end());
    v.shape = {static_cast<int64_t>(v.i.size())};
  } else {
    return Fail(n, "only tensor, float and int values are supported");
  }
  consts_[n.output(0)] = std::move(v);
  return absl::OkStatus();
}

// Shape, Gather, ConstantOfShape and Cast: evaluated on constants.
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
    ConstValue fill;
    fill.f = {0.0f};
    if (const auto* a = Attr(n, "value")) {
      auto c = internal::FromTensorProto(a->t(), "value");
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
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= data->shape[d];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= data->shape[d];
    const int64_t extent = data->shape[axis];
    out.is_int = data->is_int;
    out.shape.assign(data->shape.begin(), data->shape.begin() + axis);
    out.shape.insert(out.shape.end(), ind->shape.begin(), ind->shape.end());
    out.shape.insert(out.shape.end(), data->shape.begin() + axis + 1,
                     data->shape.end());
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t idx : *indices) {
        if (idx < 0) idx += extent;
        if (idx < 0 || idx >= extent) {
          return Fail(n, absl::StrCat("index out of range [0, ", extent, ")"));
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
  consts_[n.output(0)] = std::move(out);
  return absl::OkStatus();
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
    const int64_t out = (in + strides[d] - 1) / strides[d];
    const int64_t total = std::max<int64_t>(
        0, (out - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - in);
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
    for (size_t d = 0; d < out.shape.size(); ++d) {
      if (out.shape[d] == 0) out.shape[d] = data->shape.at(d);
      if (out.shape[d] == -1) {
        infer = static_cast<int64_t>(d);
      } else {
        known *= out.shape[d];
      }
    }
    if (infer >= 0) out.shape[infer] = known ? data->size() / known : 0;
    if (out.size() != data->size()) {
      return Fail(n, absl::StrCat("cannot reshape ", DimsText(data->shape),
                                  " to ", DimsText(*target)));
    }
    consts_[n.output(0)] = std::move(out);
    return absl::OkStatus();
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
    consts_[n.output(0)] = std::move(out);
    return absl::OkStatus();
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
    out.shape[axis] += c->shape[axis];
  }
  for (int64_t o = 0; o < outer; ++o) {
    for (const std::string& in : n.input()) {
      const ConstValue* c = Const(in);
      const int64_t chunk = c->size() / std::max<int64_t>(outer, 1);
      for (int64_t k = 0; k < chunk; ++k) {
        if (c->is_int) {
          out.i.push_back(c->i[o * chunk + k]);
        } else {
          out.f.push_back(c->f[o * chunk + k]);
        }
      }
    }
  }
  consts_[n.output(0)] = std::move(out);
  return absl::OkStatus();
}

absl::Status Importer::ConvertBinary(const onnx::NodeProto& n, Op op) {
  const ConstValue* a = Const(n.input(0));
  const ConstValue* b = Const(n.input(1));
  if (a != nullptr && b != nullptr && a->is_int == b->is_int &&
      (a->size() == b->size() || a->size() == 1 || b->size() == 1)) {
    // Both constant (shape arithmetic or folded weights): evaluate.
    const ConstValue& big = a->size() >= b->size() ? *a : *b;
    ConstValue out;
    out.is_int = a->is_int;
    out.shape = big.shape;
    const int64_t size = big.size();
    for (int64_t k = 0; k < size; ++k) {
      const int64_t ka = a->size() == 1 ? 0 : k;
      const int64_t kb = b->size() == 1 ? 0 : k;
      if (out.is_int) {
        const int64_t x = a->i[ka], y = b->i[kb];
        const bool unknown = x == kUnknownDim || y == kUnknownDim;
        out.i.push_back(unknown ? kUnknownDim
                                : (op == Op::kAdd ? x + y : x * y));
      } else {
        const float x = a->f[ka], y = b->f[kb];
        out.f.push_back(op == Op::kAdd ? x + y : x * y);
      }
    }
    consts_[n.output(0)] = std::move(out);
    return absl::OkStatus();
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
  Node& node = Emit(n, Op::kPad);
  node.attrs.pads = pads;
  node.attrs.value = value;
  return absl::OkStatus();
}

// INVALID_ARGUMENT naming every node whose op is not supported, or OK.
absl::Status CheckSupported(const onnx::GraphProto& g) {
  std::vector<std::string> unsupported;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    const bool default_domain = n.domain().empty() || n.domain() == "ai.onnx";
    if (!default_domain || SupportedOps().count(n.op_type()) == 0) {
      unsupported.push_back(absl::StrCat(
          "'", n.name().empty() ? absl::StrCat(n.op_type(), "_", i) : n.name(),
          "' (op ", default_domain ? "" : absl::StrCat(n.domain(), "::"),
          n.op_type(), ")"));
    }
  }
  if (unsupported.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      unsupported.size(), " node", unsupported.size() == 1 ? " is" : "s are",
      " not supported: ", absl::StrJoin(unsupported, ", ")));
}

int64_t DefaultOpset(const onnx::ModelProto& model) {
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  }
  return -1;
}

}  // namespace

absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes,
                                      const std::string& base_dir,
                                      const ImportOptions& options) {
  if (static_cast<int64_t>(bytes.size()) > options.max_model_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the model is ", bytes.size(), " bytes; the limit is ",
                     options.max_model_bytes,
                     " (protobuf cannot parse 2 GiB or more: "
                     "store the weights as ONNX external data)"));
  }
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        "the file is not a valid ONNX model (protobuf parsing failed)");
  }
  if (!model.has_graph()) {
    return absl::InvalidArgumentError("the ONNX model has no graph");
  }
  const int64_t opset = DefaultOpset(model);
  if (opset < kMinOpset || opset > kMaxOpset) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model uses opset ", opset, "; opsets ", kMinOpset,
                     " to ", kMaxOpset, " are supported"));
  }
  if (absl::Status s = CheckSupported(model.graph()); !s.ok()) return s;
  if (absl::Status s = internal::LoadExternalData(model, base_dir,
                                                  options.max_external_bytes);
      !s.ok()) {
    return s;
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ONNX checker rejected the model: ", e.what()));
  }
  try {
    onnx::ShapeInferenceOptions shape_options(/*check_type_val=*/true,
                                              /*strict_mode_val=*/1,
                                              /*data_prop_val=*/true);
    onnx::shape_inference::InferShapes(
        model, onnx::OpSchemaRegistry::Instance(), shape_options);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("ONNX shape inference failed: ", e.what()));
  }
  return Importer(model, opset).Run();
}

absl::StatusOr<Graph> ImportOnnxFile(const std::string& path,
                                     const ImportOptions& options) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read: ", ec.message()));
  }
  if (static_cast<int64_t>(size) > options.max_model_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        path, " is ", size, " bytes; the limit is ", options.max_model_bytes,
        " (protobuf cannot parse 2 GiB or more: store the weights as ONNX "
        "external data)"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string dir =
      std::filesystem::absolute(path).parent_path().string();
  absl::StatusOr<Graph> graph = ImportOnnxBytes(buffer.str(), dir, options);
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat(path, ": ", graph.status().message()));
  }
  return graph;
}

absl::StatusOr<Tensor> ReadOnnxTensorFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  onnx::TensorProto proto;
  if (!proto.ParseFromString(buffer.str())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a serialized ONNX TensorProto"));
  }
  absl::StatusOr<ConstValue> v = internal::FromTensorProto(proto, path);
  if (!v.ok()) return v.status();
  if (v->is_int) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": holds integers; a float tensor is needed"));
  }
  return Tensor{v->shape, std::move(v->f)};
}

}  // namespace esb::graph
