// The ONNX-to-IR converter (internal to core/graph): one Importer per
// model; its methods are split between onnx_import.cc (the walk over the
// graph, outputs), onnx_layers.cc (the dispatch by op type, Constant and
// the layers) and onnx_fold.cc (shape arithmetic and data-movement ops).
#ifndef ESB_CORE_ONNX_ONNX_IMPORTER_H_
#define ESB_CORE_ONNX_ONNX_IMPORTER_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/graph/checked.h"
#include "core/graph/graph.h"
#include "core/onnx/onnx_import.h"
#include "core/onnx/onnx_tensor.h"
#include "onnx/onnx_pb.h"

namespace esb::graph::internal {

// "[1, ?, 28, 28]", with ? for dims known only at run time.
std::string DimsText(const std::vector<int64_t>& dims);

// Thread-compatible; used once.
class Importer {
 public:
  Importer(const onnx::ModelProto& model, int64_t opset,
           const ImportOptions& options)
      : model_(model), opset_(opset), options_(options) {}

  absl::StatusOr<Graph> Run();

 private:
  using Status = absl::Status;

  Status Fail(const onnx::NodeProto& n, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("node '", current_name_, "' (", n.op_type(), "): ", what));
  }

  // OK when a value of `shape` computed by `n` fits
  // options_.max_tensor_elements; checked before the value is allocated.
  // INVALID_ARGUMENT on a negative dim, RESOURCE_EXHAUSTED otherwise.
  Status CheckOutput(const onnx::NodeProto& n,
                     const std::vector<int64_t>& shape) const {
    for (int64_t d : shape) {
      if (d < 0) {
        return Fail(n, absl::StrCat("output shape ", DimsText(shape),
                                    " has a negative dimension"));
      }
    }
    std::optional<int64_t> count = CheckedProduct(shape);
    if (!count || *count > options_.max_tensor_elements) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "node '", current_name_, "' (", n.op_type(), "): output ",
          DimsText(shape), " of ",
          count ? absl::StrCat(*count) : std::string("more than 2^63"),
          " elements exceeds the limit of ", options_.max_tensor_elements,
          " elements per tensor (ImportOptions.max_tensor_elements)"));
    }
    return absl::OkStatus();
  }
  // Records constant `name`, charging its bytes to
  // options_.max_constant_bytes. `what` names it in errors.
  Status Store(const std::string& name, ConstValue v, absl::string_view what) {
    const int64_t bytes = static_cast<int64_t>(v.f.size() * sizeof(float) +
                                               v.i.size() * sizeof(int64_t));
    if (bytes > options_.max_constant_bytes - constant_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          what, ": its ", bytes, " bytes bring the model's constants past ",
          "the limit of ", options_.max_constant_bytes,
          " bytes (ImportOptions.max_constant_bytes)"));
    }
    constant_bytes_ += bytes;
    consts_[name] = std::move(v);
    return absl::OkStatus();
  }
  Status StoreOutput(const onnx::NodeProto& n, ConstValue v) {
    return Store(n.output(0), std::move(v),
                 absl::StrCat("node '", current_name_, "' (", n.op_type(),
                              ") output '", n.output(0), "'"));
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
  // The shape of a value (kUnknownDim where a dim is open): a constant's, the
  // one its ONNX type declares, or else the one InferredShape finds; nullptr
  // when none is known.
  // A declared shape open past the batch dim (ONNX's inference knew the
  // rank only) is refined the same way, once.
  const std::vector<int64_t>* Shape(const std::string& name) {
    const std::vector<int64_t>* s = DeclaredShape(name);
    if (s != nullptr && (inferred_.count(name) > 0 ||
                         std::find(s->begin() + std::min<size_t>(s->size(), 1),
                                   s->end(), kUnknownDim) == s->end())) {
      return s;
    }
    inferred_.insert(name);
    if (const std::vector<int64_t>* found = InferredShape(name)) return found;
    return DeclaredShape(name);
  }
  const std::vector<int64_t>* DeclaredShape(const std::string& name) const {
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

  // `base`, or `base` with underscores appended until no earlier node of
  // the graph has the name.
  std::string UniqueName(std::string base) {
    while (!node_names_.insert(base).second) base += "_";
    return base;
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
  Status ConvertReduce(const onnx::NodeProto& n, Op op);
  Status ConvertSlice(const onnx::NodeProto& n);
  Status ConvertConcat(const onnx::NodeProto& n);
  Status ConvertBinary(const onnx::NodeProto& n, Op op);
  Status ConvertSoftmax(const onnx::NodeProto& n);
  Status ConvertPad(const onnx::NodeProto& n);
  Status ConvertSplit(const onnx::NodeProto& n);
  Status ConvertExpand(const onnx::NodeProto& n);
  Status ConvertSum(const onnx::NodeProto& n);
  Status ConvertResize(const onnx::NodeProto& n);
  Status ConvertLayerNorm(const onnx::NodeProto& n);
  // Output `out` of `n` as `count` elements from `begin`, `step` apart
  // (empty: 1), per dim of x (shape `x_shape`): a constant when x is one;
  // else (steps of 1 only) an alias when that is all of x, or a Pad with
  // negative pads named `name`.
  Status Crop(const onnx::NodeProto& n, const std::string& name,
              const std::string& out, const std::vector<int64_t>& x_shape,
              const std::vector<int64_t>& begin,
              const std::vector<int64_t>& count,
              const std::vector<int64_t>& step = {});
  // Explicit spatial pads for `auto_pad`, from the input's static shape.
  absl::StatusOr<std::vector<int64_t>> SpatialPads(
      const onnx::NodeProto& n, const std::vector<int64_t>& kernel,
      const std::vector<int64_t>& strides,
      const std::vector<int64_t>& dilations);

  Status FinishOutputs();
  void RemoveDeadNodes();
  // InferShapes on graph_ with every batch dim 1, within
  // options_.max_tensor_elements: no intermediate may exceed the budget.
  Status CheckShapesAtBatch1() const;
  // The shape of the computed value `name` from InferShapes on the nodes
  // emitted so far (run at batch 1 and 2: a dim that differs is the batch,
  // kUnknownDim), for values whose ONNX type declares none. Cached in
  // shapes_; nullptr when the value is not computed or inference fails.
  const std::vector<int64_t>* InferredShape(const std::string& name);
  std::set<std::string> uninferred_;  // Values InferredShape failed on.
  std::set<std::string> inferred_;    // Values Shape() asked it about.
  std::set<std::string> node_names_;  // Of the nodes converted so far.

  const onnx::ModelProto& model_;
  int64_t opset_;
  const ImportOptions options_;
  int64_t constant_bytes_ = 0;  // Bytes of consts_ charged so far.
  std::map<std::string, ConstValue> consts_;
  std::map<std::string, std::string> alias_;
  std::map<std::string, std::vector<int64_t>> shapes_;
  std::set<std::string> read_;     // Values read by a node or a graph output.
  std::set<std::string> defined_;  // Outputs of the nodes converted so far.
  std::string current_name_;
  Graph graph_;
};

}  // namespace esb::graph::internal

#endif  // ESB_CORE_ONNX_ONNX_IMPORTER_H_
