// ONNX import: the checks made before conversion (model size, opset,
// supported ops, the window attributes libonnx would divide by, libonnx's
// checker and shape inference) and the Importer's walk over the graph
// (initializers, inputs, the nodes in order, outputs, dead nodes, and the
// shape check at batch 1). Each node's conversion is in onnx_layers.cc and
// onnx_fold.cc.
#include "core/onnx/onnx_import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/graph/shapes.h"
#include "core/onnx/onnx_importer.h"
#include "core/onnx/onnx_tensor.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"

namespace esb::graph {
namespace {

using internal::ConstValue;
using internal::Importer;
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
                                                     "HardSigmoid",
                                                     "HardSwish",
                                                     "MaxPool",
                                                     "AveragePool",
                                                     "GlobalAveragePool",
                                                     "Add",
                                                     "Mul",
                                                     "Sub",
                                                     "Div",
                                                     "Pow",
                                                     "Sqrt",
                                                     "Erf",
                                                     "ReduceMean",
                                                     "ReduceSum",
                                                     "ReduceMax",
                                                     "Slice",
                                                     "Split",
                                                     "Expand",
                                                     "Sum",
                                                     "Resize",
                                                     "LayerNormalization",
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

// The dims of a value's declared type; nullopt when the type declares no
// shape (unknown rank, which ONNX's own shape inference records for a
// Reshape to a computed shape), as opposed to a declared rank-0 scalar.
std::optional<std::vector<int64_t>> ShapeOf(const onnx::TypeProto& type) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) {
    return std::nullopt;
  }
  std::vector<int64_t> dims;
  for (const auto& d : type.tensor_type().shape().dim()) {
    dims.push_back(d.has_dim_value() ? d.dim_value() : kUnknownDim);
  }
  return dims;
}

}  // namespace

namespace internal {

std::string DimsText(const std::vector<int64_t>& dims) {
  std::vector<std::string> parts;
  for (int64_t d : dims) {
    parts.push_back(d == kUnknownDim ? "?" : absl::StrCat(d));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

absl::StatusOr<Graph> Importer::Run() {
  const onnx::GraphProto& g = model_.graph();
  graph_.opset = opset_;
  for (const auto& prop : model_.metadata_props()) {
    graph_.metadata[prop.key()] = prop.value();
  }

  if (g.output_size() == 0) {
    return absl::InvalidArgumentError(
        "the graph declares no outputs; a model needs at least one");
  }
  for (const auto& t : g.initializer()) {
    const std::string what = absl::StrCat("initializer '", t.name(), "'");
    if (consts_.count(t.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is defined more than once"));
    }
    auto c = internal::FromTensorProto(t, what, options_.max_tensor_elements);
    if (!c.ok()) return c.status();
    if (Status s = Store(t.name(), *std::move(c), what); !s.ok()) return s;
  }
  for (const auto& n : g.node()) {
    read_.insert(n.input().begin(), n.input().end());
  }
  for (const auto& vi : g.output()) read_.insert(vi.name());
  for (const auto* list : {&g.value_info(), &g.output()}) {
    for (const auto& vi : *list) {
      if (auto dims = ShapeOf(vi.type())) shapes_[vi.name()] = *std::move(dims);
    }
  }
  for (const auto& vi : g.input()) {
    if (consts_.count(vi.name())) continue;  // An initializer with a default.
    if (!defined_.insert(vi.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", vi.name(), "' is declared more than once"));
    }
    const auto& tt = vi.type().tensor_type();
    if (!vi.type().has_tensor_type() ||
        tt.elem_type() != onnx::TensorProto::FLOAT) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", vi.name(), "' has type ",
                       onnx::TensorProto::DataType_Name(tt.elem_type()),
                       "; only float32 inputs are supported"));
    }
    std::optional<std::vector<int64_t>> declared = ShapeOf(vi.type());
    if (!declared.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", vi.name(),
                       "' has no shape; a static shape (batch "
                       "excepted) is required"));
    }
    std::vector<int64_t> dims = *std::move(declared);
    if (dims.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", vi.name(), "' has rank 0; a tensor input is required"));
    }
    std::vector<int64_t> at_batch_1 = dims;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] != kUnknownDim && dims[d] < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", vi.name(), "' dimension ", d, " is ", dims[d],
            " (shape ", DimsText(dims), "); dimensions must be positive"));
      }
      if (dims[d] != kUnknownDim) continue;
      at_batch_1[d] = 1;
      if (d != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", vi.name(), "' dimension ", d, " is not fixed (shape ",
            DimsText(dims), "); only the batch dimension may be free"));
      }
    }
    if (Status s = internal::CheckElements(
            absl::StrCat("input '", vi.name(), "'"), at_batch_1,
            options_.max_tensor_elements, "ImportOptions.max_tensor_elements");
        !s.ok()) {
      return s;
    }
    shapes_[vi.name()] = dims;
    std::replace(dims.begin(), dims.end(), kUnknownDim, kBatch);
    graph_.inputs.push_back(ValueInfo{vi.name(), dims});
  }

  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    current_name_ = UniqueName(
        n.name().empty() ? absl::StrCat(n.op_type(), "_", i) : n.name());
    if (n.input_size() == 0 && n.op_type() != "Constant") {
      return Fail(n, "has no inputs");
    }
    if (n.output_size() == 0 || n.output(0).empty()) {
      return Fail(n, "has no output");
    }
    for (const std::string& in : n.input()) {
      if (!in.empty() && consts_.count(in) == 0 && defined_.count(in) == 0) {
        return Fail(n, absl::StrCat("reads '", in,
                                    "', which is neither a graph input, an "
                                    "initializer nor the output of an "
                                    "earlier node"));
      }
    }
    for (const std::string& out : n.output()) {
      if (out.empty()) continue;
      if (consts_.count(out) || !defined_.insert(out).second) {
        return Fail(
            n, absl::StrCat("defines '", out, "', which is already defined"));
      }
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
  if (Status s = CheckShapesAtBatch1(); !s.ok()) return s;
  return std::move(graph_);
}

absl::Status Importer::FinishOutputs() {
  std::set<std::string> seen;
  for (const auto& vi : model_.graph().output()) {
    if (!seen.insert(vi.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("output '", vi.name(), "' is declared more than once"));
    }
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
      ConstValue copy = *Const(source);
      if (Status s = Store(from, std::move(copy),
                           absl::StrCat("output '", vi.name(), "'"));
          !s.ok()) {
        return s;
      }
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

absl::Status Importer::CheckShapesAtBatch1() const {
  std::map<std::string, std::vector<int64_t>> given;
  for (const ValueInfo& in : graph_.inputs) {
    std::vector<int64_t> dims = in.shape;
    std::replace(dims.begin(), dims.end(), kBatch, int64_t{1});
    given[in.name] = dims;
  }
  ShapeOptions shape_options;
  shape_options.max_tensor_elements = options_.max_tensor_elements;
  auto shapes = InferShapes(graph_, given, shape_options);
  if (shapes.ok()) return absl::OkStatus();
  if (absl::IsResourceExhausted(shapes.status())) {
    return absl::ResourceExhaustedError(
        absl::StrCat(shapes.status().message(),
                     " at batch 1 (ImportOptions.max_tensor_elements)"));
  }
  return shapes.status();
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

}  // namespace internal

namespace {

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

// ONNX's own shape inference divides by strides and trusts the other window
// attributes of Conv and pooling: a zero stride would stop the process with
// SIGFPE there. INVALID_ARGUMENT naming the node and attribute unless every
// stride, dilation and kernel_shape entry is >= 1, every pad >= 0 and group
// >= 1.
absl::Status CheckWindowAttributes(const onnx::GraphProto& g) {
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    if (n.op_type() != "Conv" && n.op_type() != "MaxPool" &&
        n.op_type() != "AveragePool") {
      continue;
    }
    const std::string name =
        n.name().empty() ? absl::StrCat(n.op_type(), "_", i) : n.name();
    for (const auto& a : n.attribute()) {
      const int64_t min = a.name() == "pads" ? 0 : 1;
      const bool listed = a.name() == "strides" || a.name() == "dilations" ||
                          a.name() == "kernel_shape" || a.name() == "pads";
      bool bad = false;
      if (listed) {
        for (int64_t v : a.ints()) bad = bad || v < min;
      } else if (a.name() == "group") {
        bad = a.i() < 1;
      }
      if (bad) {
        std::vector<int64_t> values(a.ints().begin(), a.ints().end());
        if (!listed) values = {a.i()};
        return absl::InvalidArgumentError(absl::StrCat(
            "node '", name, "' (", n.op_type(), "): attribute ", a.name(), " [",
            absl::StrJoin(values, ", "), "] must hold values >= ", min));
      }
    }
  }
  return absl::OkStatus();
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
  if (absl::Status s = CheckWindowAttributes(model.graph()); !s.ok()) return s;
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
  return Importer(model, opset, options).Run();
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
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot resolve: ", ec.message()));
  }
  const std::string dir = absolute.parent_path().string();
  absl::StatusOr<Graph> graph = ImportOnnxBytes(buffer.str(), dir, options);
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat(path, ": ", graph.status().message()));
  }
  return graph;
}

absl::StatusOr<Tensor> ReadOnnxTensorFile(const std::string& path,
                                          int64_t max_elements) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  onnx::TensorProto proto;
  if (!proto.ParseFromString(buffer.str())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a serialized ONNX TensorProto"));
  }
  absl::StatusOr<ConstValue> v =
      internal::FromTensorProto(proto, path, max_elements);
  if (!v.ok()) return v.status();
  if (v->is_int) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": holds integers; a float tensor is needed"));
  }
  return Tensor{v->shape, std::move(v->f)};
}

}  // namespace esb::graph