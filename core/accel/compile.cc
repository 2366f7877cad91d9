#include "core/accel/compile.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/esb/codes.h"
#include "core/graph/shapes.h"
#include "core/runtime/esb_layers.h"

namespace esb::accel::internal {
namespace {

using graph::Graph;
using graph::Node;
using graph::Op;
using runtime::internal::QuantizedLayer;
using runtime::internal::QuantizedLayers;
using Shapes = std::map<std::string, std::vector<int64_t>>;
using Grid = std::pair<Format, float>;  // An input grid: format and alpha.

constexpr uint64_t kRegionAlign = 64;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

bool IsAlias(Op op) {
  return op == Op::kFlatten || op == Op::kReshape || op == Op::kIdentity;
}

bool FollowsBatch(const std::vector<int64_t>& one,
                  const std::vector<int64_t>& two) {
  return !one.empty() && one.size() == two.size() && one[0] == 1 &&
         two[0] == 2 && std::equal(one.begin() + 1, one.end(), two.begin() + 1);
}

DType IntegerDType(const Format& f) {
  if (f.is_signed() && f.max_integer() <= 127) return DType::kS8;
  if (!f.is_signed() && f.max_integer() <= 255) return DType::kU8;
  return DType::kS32;
}

uint32_t Dim(int64_t v) { return static_cast<uint32_t>(v); }

std::vector<int64_t> BatchShape(std::vector<int64_t> one) {
  one[0] = graph::kBatch;
  return one;
}

class Compiler {
 public:
  Compiler(const pipeline::PackagedModel& model, const ArrayConfig& config,
           int max_batch)
      : model_(model),
        graph_(model.graph),
        config_(config),
        max_batch_(max_batch) {}

  absl::StatusOr<std::unique_ptr<CompiledModel>> Compile(
      const runtime::EsbExecutorOptions& host_options, bool build_executors);

 private:
  absl::Status InferBothShapes();
  bool Batched(const std::string& v) const;
  bool Constant(const std::string& v) const {
    return graph_.FindConstant(v) != nullptr;
  }
  bool DevicePlaceable(int i) const;
  std::optional<Grid> FirstGrid(const std::string& v) const;
  bool CanBeInteger(const std::string& v, const Grid& grid) const;
  void AssignStorage();
  absl::Status PlaceRegions();
  absl::StatusOr<Descriptor> Describe(int i);
  absl::Status BuildSegments(const runtime::EsbExecutorOptions& host_options,
                             bool build_executors);
  absl::Status BuildHostSegment(const std::vector<int>& nodes,
                                const runtime::EsbExecutorOptions& options,
                                bool build_executor, Segment* segment);
  // Appends to the data area; the offset is relative to its start.
  uint64_t AppendData(const void* data, size_t bytes);

  const pipeline::PackagedModel& model_;
  const Graph& graph_;
  const ArrayConfig config_;
  const int max_batch_;
  Shapes one_;
  Shapes two_;
  QuantizedLayers quantized_;
  std::vector<bool> on_device_;
  std::set<std::string> resident_;  // Values the device produces.
  std::map<std::string, std::vector<std::pair<int, int>>> readers_;
  std::set<std::string> graph_outputs_;
  std::map<std::string, Grid> grids_;            // Values stored as integers.
  std::map<std::string, std::string> alias_of_;  // Alias -> stored value.
  std::vector<std::string> stored_;  // Values with a region, in order.
  std::unique_ptr<CompiledModel> out_ = std::make_unique<CompiledModel>();
  std::string data_;
  uint64_t data_base_ = 0;
};

absl::Status Compiler::InferBothShapes() {
  Shapes in1;
  Shapes in2;
  for (const graph::ValueInfo& v : graph_.inputs) {
    if (v.shape.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", v.name, "' has no declared shape"));
    }
    for (size_t d = 1; d < v.shape.size(); ++d) {
      if (v.shape[d] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", v.name, "' has a free dim ", d,
                         " besides the batch; the accelerator needs fixed "
                         "image shapes"));
      }
    }
    in1[v.name] = v.shape;
    in1[v.name][0] = 1;
    in2[v.name] = v.shape;
    in2[v.name][0] = 2;
  }
  absl::StatusOr<Shapes> one = graph::InferShapes(graph_, in1);
  if (!one.ok()) return one.status();
  one_ = *std::move(one);
  // A graph that only runs at batch 1 keeps every node on the host.
  absl::StatusOr<Shapes> two = graph::InferShapes(graph_, in2);
  if (two.ok()) two_ = *std::move(two);
  return absl::OkStatus();
}

bool Compiler::Batched(const std::string& v) const {
  auto a = one_.find(v);
  auto b = two_.find(v);
  return a != one_.end() && b != two_.end() &&
         FollowsBatch(a->second, b->second);
}

bool Compiler::DevicePlaceable(int i) const {
  const Node& node = graph_.nodes[i];
  if (node.outputs.size() != 1 || !Batched(node.outputs[0])) return false;
  std::vector<std::string> values;  // The non-constant inputs.
  for (const std::string& v : node.inputs) {
    if (!Constant(v)) values.push_back(v);
  }
  if (values.empty()) return false;
  for (const std::string& v : values) {
    if (!Batched(v)) return false;
  }
  const std::vector<int64_t>& x = one_.at(values[0]);
  if (IsAlias(node.op)) {
    return node.inputs[0] == values[0] && resident_.count(values[0]) > 0;
  }
  if (graph::IsQuantizedOp(node.op)) {
    const QuantizedLayer* q = quantized_.Find(i);
    if (q == nullptr || values.size() != 1 || node.inputs[0] != values[0]) {
      return false;
    }
    if (q->quant.weight_format.sb() > config_.max_sb) return false;
    if (q->acc_bound > std::numeric_limits<int32_t>::max()) return false;
    if (node.op == Op::kConv) {
      return x.size() == 4 && q->weight_shape.size() == 4;
    }
    if (node.op == Op::kGemm && node.attrs.trans_a) return false;
    return x.size() == 2 && q->weight_shape.size() == 2;
  }
  switch (node.op) {
    case Op::kMaxPool:
      return x.size() == 4;
    case Op::kAdd:
      return values.size() == 2 && one_.at(values[1]) == x;
    case Op::kRelu:
      return true;
    case Op::kClip:
      return !std::isnan(node.attrs.min) && !std::isnan(node.attrs.max) &&
             node.attrs.min <= node.attrs.max;
    default:
      return false;
  }
}

// The input grid of the first quantized layer that reads `v` (directly or
// through MaxPool and reshapes).
std::optional<Grid> Compiler::FirstGrid(const std::string& v) const {
  auto it = readers_.find(v);
  if (it == readers_.end()) return std::nullopt;
  for (const auto& [j, pos] : it->second) {
    const Node& reader = graph_.nodes[j];
    if (graph::IsQuantizedOp(reader.op)) {
      const QuantizedLayer* q = quantized_.Find(j);
      if (q != nullptr) {
        return Grid{q->quant.input_format, q->quant.input_alpha};
      }
    } else if (reader.op == Op::kMaxPool || IsAlias(reader.op)) {
      std::optional<Grid> g = FirstGrid(reader.outputs[0]);
      if (g) return g;
    }
  }
  return std::nullopt;
}

bool Compiler::CanBeInteger(const std::string& v, const Grid& grid) const {
  if (graph_outputs_.count(v) > 0) return false;
  auto it = readers_.find(v);
  if (it == readers_.end()) return true;
  for (const auto& [j, pos] : it->second) {
    if (!on_device_[j] || pos != 0) return false;
    const Node& reader = graph_.nodes[j];
    if (graph::IsQuantizedOp(reader.op)) {
      const QuantizedLayer* q = quantized_.Find(j);
      if (q == nullptr || !(q->quant.input_format == grid.first) ||
          q->quant.input_alpha != grid.second) {
        return false;
      }
    } else if (reader.op == Op::kMaxPool || IsAlias(reader.op)) {
      if (!CanBeInteger(reader.outputs[0], grid)) return false;
    } else {
      return false;
    }
  }
  return true;
}

void Compiler::AssignStorage() {
  auto store = [&](const std::string& v, DType t) {
    if (out_->regions.count(v) > 0) return;
    Region r;
    r.dtype = t;
    r.image_elements = graph::NumElements(one_.at(v));
    out_->regions[v] = r;
    stored_.push_back(v);
  };
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    if (!on_device_[i]) continue;
    const Node& node = graph_.nodes[i];
    for (const std::string& v : node.inputs) {
      if (!Constant(v) && resident_.count(v) == 0) store(v, DType::kF32);
    }
    const std::string& y = node.outputs[0];
    if (IsAlias(node.op)) {
      const std::string& x = node.inputs[0];
      alias_of_[y] = alias_of_.count(x) > 0 ? alias_of_.at(x) : x;
      auto g = grids_.find(x);
      if (g != grids_.end()) grids_.emplace(y, g->second);
      continue;
    }
    DType t = DType::kF32;
    if (graph::IsQuantizedOp(node.op)) {
      const std::optional<Grid> grid = FirstGrid(y);
      if (grid && CanBeInteger(y, *grid)) {
        t = IntegerDType(grid->first);
        grids_.emplace(y, *grid);
      }
    } else if (node.op == Op::kMaxPool) {
      t = out_->regions.at(node.inputs[0]).dtype;
      auto g = grids_.find(node.inputs[0]);
      if (g != grids_.end()) grids_.emplace(y, g->second);
    }
    store(y, t);
  }
}

uint64_t Compiler::AppendData(const void* data, size_t bytes) {
  data_.resize(AlignUp(data_.size(), 8));
  const uint64_t at = data_.size();
  data_.append(static_cast<const char*>(data), bytes);
  return at;
}

absl::StatusOr<Descriptor> Compiler::Describe(int i) {
  const Node& node = graph_.nodes[i];
  const std::string context =
      absl::StrCat("layer '", node.name, "' (", graph::OpName(node.op), ")");
  Descriptor d;
  const std::string& x = node.inputs[0];
  const std::vector<int64_t>& xs = one_.at(x);
  const std::vector<int64_t>& ys = one_.at(node.outputs[0]);
  auto spatial = [](const std::vector<int64_t>& s, uint32_t* c, uint32_t* h,
                    uint32_t* w) {
    *c = Dim(s[1]);
    *h = s.size() == 4 ? Dim(s[2]) : 1;
    *w = s.size() == 4 ? Dim(s[3]) : 1;
  };
  if (IsAlias(node.op)) {
    return absl::InternalError(context + ": reshapes have no descriptor");
  }
  if (graph::IsQuantizedOp(node.op) || node.op == Op::kMaxPool) {
    spatial(xs, &d.in_c, &d.in_h, &d.in_w);
    spatial(ys, &d.out_c, &d.out_h, &d.out_w);
  } else {
    // Elementwise: the per-image elements as one row.
    d.in_c = d.out_c = Dim(graph::NumElements(xs));
    d.in_h = d.in_w = d.out_h = d.out_w = 1;
  }
  if (node.op == Op::kConv || node.op == Op::kMaxPool) {
    const QuantizedLayer* q = quantized_.Find(i);
    absl::StatusOr<graph::WindowGeometry> w = graph::ResolveWindow(
        node, xs,
        q != nullptr ? absl::Span<const int64_t>(q->weight_shape)
                     : absl::Span<const int64_t>());
    if (!w.ok()) return w.status();
    d.kernel_h = Dim(w->kernel[0]);
    d.kernel_w = Dim(w->kernel[1]);
    d.stride_h = Dim(w->strides[0]);
    d.stride_w = Dim(w->strides[1]);
    d.pad_top = Dim(w->pads_begin[0]);
    d.pad_left = Dim(w->pads_begin[1]);
    d.dilation_h = Dim(w->dilations[0]);
    d.dilation_w = Dim(w->dilations[1]);
  }
  auto region = [&](const std::string& v) -> const Region& {
    auto a = alias_of_.find(v);
    return out_->regions.at(a == alias_of_.end() ? v : a->second);
  };
  d.input_dtype = region(x).dtype;
  d.output_dtype = region(node.outputs[0]).dtype;
  switch (node.op) {
    case Op::kMaxPool:
      d.op = LayerKind::kMaxPool;
      break;
    case Op::kAdd:
      d.op = LayerKind::kAdd;
      d.input2_dtype = region(node.inputs[1]).dtype;
      break;
    case Op::kRelu:
      d.op = LayerKind::kRelu;
      break;
    case Op::kClip:
      d.op = LayerKind::kClip;
      d.act_lo = node.attrs.min;
      d.act_hi = node.attrs.max;
      break;
    default: {
      const QuantizedLayer& q = *quantized_.Find(i);
      d.op = LayerKind::kConv;
      d.group = node.op == Op::kConv ? Dim(node.attrs.group) : 1;
      d.weight_format = PackFormat(q.quant.weight_format);
      d.input_format = PackFormat(q.quant.input_format);
      d.input_alpha = q.quant.input_alpha;
      d.activation = static_cast<uint32_t>(q.activation);
      d.act_lo = q.lo;
      d.act_hi = q.hi;
      auto g = grids_.find(node.outputs[0]);
      if (g != grids_.end()) {
        d.output_format = PackFormat(g->second.first);
        d.output_alpha = g->second.second;
      }
      // Weights in the array's layout [M][K]: Conv's initializer already
      // is; a Gemm B without trans_b and a MatMul B are [K][M].
      std::vector<int32_t> w = q.weights;
      const bool transposed =
          node.op != Op::kConv && graph::WeightChannelAxis(node) == 1;
      if (transposed) {
        const int64_t k = q.weight_shape[0];
        const int64_t m = q.weight_shape[1];
        for (int64_t r = 0; r < k; ++r) {
          for (int64_t c = 0; c < m; ++c) w[c * k + r] = q.weights[r * m + c];
        }
      }
      absl::StatusOr<std::string> packed =
          PackIntegers(CodeBook(q.quant.weight_format), w);
      if (!packed.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(context, ": ", packed.status().message()));
      }
      if (q.scales.size() != d.out_c || q.bias.size() != d.out_c) {
        return absl::InvalidArgumentError(absl::StrCat(
            context, ": ", q.scales.size(), " scales and ", q.bias.size(),
            " biases for ", d.out_c, " output channels"));
      }
      d.weights_bytes = packed->size();
      d.weights_offset = AppendData(packed->data(), packed->size());
      d.scales_offset = AppendData(q.scales.data(), q.scales.size() * 4);
      d.bias_offset = AppendData(q.bias.data(), q.bias.size() * 4);
      break;
    }
  }
  return d;
}

absl::Status Compiler::BuildHostSegment(
    const std::vector<int>& nodes, const runtime::EsbExecutorOptions& options,
    bool build_executor, Segment* segment) {
  Graph& g = segment->graph;
  g.opset = graph_.opset;
  std::set<std::string> produced;
  std::set<int> inside(nodes.begin(), nodes.end());
  std::map<std::string, LayerQuant> layers;
  WeightIntegers integers;
  for (int i : nodes) {
    const Node& node = graph_.nodes[i];
    for (const std::string& v : node.inputs) {
      if (v.empty()) continue;
      if (const graph::Tensor* t = graph_.FindConstant(v)) {
        g.constants.emplace(v, *t);
      } else if (produced.count(v) == 0 &&
                 std::none_of(g.inputs.begin(), g.inputs.end(),
                              [&](const graph::ValueInfo& in) {
                                return in.name == v;
                              })) {
        g.inputs.push_back({v, BatchShape(one_.at(v))});
      }
    }
    for (const std::string& v : node.outputs) produced.insert(v);
    g.nodes.push_back(node);
    auto q = model_.layers.find(node.name);
    if (q != model_.layers.end()) {
      layers.emplace(q->first, q->second);
      auto w = model_.weight_integers.find(node.name);
      if (w != model_.weight_integers.end()) {
        integers.emplace(w->first, w->second);
      }
    }
    out_->host_ops.emplace_back(graph::OpName(node.op));
  }
  for (const std::string& v : produced) {
    bool needed = graph_outputs_.count(v) > 0;
    auto r = readers_.find(v);
    if (r != readers_.end()) {
      for (const auto& [j, pos] : r->second) {
        needed = needed || inside.count(j) == 0;
      }
    }
    if (needed) g.outputs.push_back({v, BatchShape(one_.at(v))});
  }
  for (const graph::ValueInfo& v : g.inputs) {
    if (!Batched(v.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("value '", v.name,
                       "' crosses between the accelerator and the host "
                       "but does not follow the batch"));
    }
  }
  if (!build_executor) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<runtime::EsbExecutor>> executor =
      runtime::EsbExecutor::Create(g, layers, options, &integers);
  if (!executor.ok()) return executor.status();
  segment->executor = *std::move(executor);
  return absl::OkStatus();
}

absl::Status Compiler::BuildSegments(
    const runtime::EsbExecutorOptions& host_options, bool build_executors) {
  // Consecutive nodes of one placement form a segment.
  std::vector<std::vector<int>> groups;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    if (i == 0 || on_device_[i] != on_device_[i - 1]) groups.emplace_back();
    groups.back().push_back(static_cast<int>(i));
  }
  std::string programs;
  std::vector<std::pair<size_t, size_t>> patches;  // Descriptor at, segment.
  for (const std::vector<int>& nodes : groups) {
    Segment s;
    s.device = on_device_[nodes[0]];
    if (!s.device) {
      absl::Status st =
          BuildHostSegment(nodes, host_options, build_executors, &s);
      if (!st.ok()) return st;
      out_->segments.push_back(std::move(s));
      continue;
    }
    std::set<std::string> inside_values;
    std::set<int> inside(nodes.begin(), nodes.end());
    for (int i : nodes) {
      const Node& node = graph_.nodes[i];
      for (const std::string& v : node.inputs) {
        if (!Constant(v) && resident_.count(v) == 0 &&
            std::find(s.uploads.begin(), s.uploads.end(), v) ==
                s.uploads.end()) {
          s.uploads.push_back(v);
        }
      }
      for (const std::string& v : node.outputs) {
        bool needed = graph_outputs_.count(v) > 0;
        auto r = readers_.find(v);
        if (r != readers_.end()) {
          for (const auto& [j, pos] : r->second) {
            needed = needed || !on_device_[j];
          }
        }
        if (needed) s.downloads.push_back(v);
      }
      if (IsAlias(node.op)) continue;
      absl::StatusOr<Descriptor> d = Describe(i);
      if (!d.ok()) return d.status();
      s.layers.push_back(*d);
      s.layer_names.push_back(node.name);
    }
    out_->device_layers += static_cast<int>(s.layers.size());
    if (!s.layers.empty()) {
      programs.resize(AlignUp(programs.size(), 8));
      s.program_offset = programs.size();
      programs.resize(programs.size() + kHeaderBytes +
                      s.layers.size() * kDescriptorBytes);
    }
    out_->segments.push_back(std::move(s));
  }
  // Layout: programs, then data, then the regions.
  data_base_ = AlignUp(programs.size(), kRegionAlign);
  uint64_t end = AlignUp(data_base_ + data_.size(), kRegionAlign);
  for (const std::string& v : stored_) {
    Region& r = out_->regions.at(v);
    r.offset = end;
    const uint64_t bytes = static_cast<uint64_t>(r.image_elements) *
                           static_cast<uint64_t>(DTypeBytes(r.dtype)) *
                           static_cast<uint64_t>(max_batch_);
    end = AlignUp(end + bytes, kRegionAlign);
  }
  for (const auto& [alias, target] : alias_of_) {
    Region r = out_->regions.at(target);
    r.image_elements = graph::NumElements(one_.at(alias));
    out_->regions[alias] = r;
  }
  out_->buffer_bytes = end;
  out_->image.assign(programs);
  out_->image.resize(data_base_);
  out_->image.append(data_);
  for (Segment& s : out_->segments) {
    if (!s.device || s.layers.empty()) continue;
    Header h;
    h.layer_count = static_cast<uint32_t>(s.layers.size());
    h.batch = 1;
    h.max_batch = static_cast<uint32_t>(max_batch_);
    auto* base = reinterpret_cast<uint8_t*>(out_->image.data());
    WriteHeader(h, base + s.program_offset);
    for (size_t l = 0; l < s.layers.size(); ++l) {
      Descriptor& d = s.layers[l];
      auto region = [&](const std::string& v) {
        return out_->regions.at(v).offset;
      };
      const Node* node = nullptr;
      for (const Node& n : graph_.nodes) {
        if (n.name == s.layer_names[l]) node = &n;
      }
      d.input_offset = region(node->inputs[0]);
      if (d.op == LayerKind::kAdd) d.input2_offset = region(node->inputs[1]);
      d.output_offset = region(node->outputs[0]);
      if (d.op == LayerKind::kConv) {
        d.weights_offset += data_base_;
        d.scales_offset += data_base_;
        d.bias_offset += data_base_;
      }
      WriteDescriptor(
          d, base + s.program_offset + kHeaderBytes + l * kDescriptorBytes);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CompiledModel>> Compiler::Compile(
    const runtime::EsbExecutorOptions& host_options, bool build_executors) {
  absl::Status st = InferBothShapes();
  if (!st.ok()) return st;
  absl::StatusOr<QuantizedLayers> q = runtime::internal::PrepareLayers(
      graph_, model_.layers, {}, &model_.weight_integers);
  if (!q.ok()) return q.status();
  quantized_ = *std::move(q);
  for (const graph::ValueInfo& v : graph_.outputs) {
    graph_outputs_.insert(v.name);
    out_->output_names.push_back(v.name);
  }
  for (const graph::ValueInfo& v : graph_.inputs) {
    out_->input_names.push_back(v.name);
  }
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& node = graph_.nodes[i];
    for (size_t p = 0; p < node.inputs.size(); ++p) {
      readers_[node.inputs[p]].emplace_back(static_cast<int>(i),
                                            static_cast<int>(p));
    }
  }
  on_device_.assign(graph_.nodes.size(), false);
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    on_device_[i] = DevicePlaceable(static_cast<int>(i));
    if (on_device_[i]) resident_.insert(graph_.nodes[i].outputs[0]);
  }
  AssignStorage();
  st = BuildSegments(host_options, build_executors);
  if (!st.ok()) return st;
  out_->shapes = one_;
  out_->max_batch = max_batch_;
  return std::move(out_);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CompiledModel>> Compile(
    const pipeline::PackagedModel& model, const ArrayConfig& config,
    int max_batch, const runtime::EsbExecutorOptions& host_options,
    bool build_executors) {
  return Compiler(model, config, max_batch)
      .Compile(host_options, build_executors);
}

}  // namespace esb::accel::internal
