#include "core/graph/passes.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/graph/shapes.h"

namespace esb::graph {
namespace {

// Readers of each value: node indices (a node reading a value twice counts
// twice) and whether it is a graph output.
struct Uses {
  std::map<std::string, int> readers;
  std::map<std::string, int> reader_node;  // Last reader's index.
  std::set<std::string> outputs;

  explicit Uses(const Graph& g) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (const std::string& in : g.nodes[i].inputs) {
        ++readers[in];
        reader_node[in] = static_cast<int>(i);
      }
    }
    for (const ValueInfo& o : g.outputs) outputs.insert(o.name);
  }
  // The single node reading `value`, or -1.
  int SoleReader(const std::string& value) const {
    auto it = readers.find(value);
    if (it == readers.end() || it->second != 1 || outputs.count(value)) {
      return -1;
    }
    auto node = reader_node.find(value);
    return node == reader_node.end() ? -1 : node->second;
  }
};

std::string FreshName(const Graph& g, const std::string& base) {
  std::string name = base;
  while (g.constants.count(name)) name += "_";
  return name;
}

// Folds BN node `bn` into its producer `p`. Both are validated by the caller.
bool FoldInto(Graph& g, Node& p, const Node& bn) {
  const Tensor* scale = g.FindConstant(bn.inputs[1]);
  const Tensor* bias = g.FindConstant(bn.inputs[2]);
  const Tensor* mean = g.FindConstant(bn.inputs[3]);
  const Tensor* var = g.FindConstant(bn.inputs[4]);
  const Tensor* w = g.FindConstant(p.inputs[1]);
  if (!scale || !bias || !mean || !var || !w) return false;
  const int64_t m = scale->size();
  if (bias->size() != m || mean->size() != m || var->size() != m) return false;

  // Output channels of the producer and the layout of its weights.
  int64_t channels, rows_per_channel, cols;
  bool per_column = false;
  if (w->shape.empty() || w->shape[0] <= 0) return false;
  if (p.op == Op::kConv) {
    channels = w->shape[0];
    rows_per_channel = w->size() / channels;
    cols = 1;
  } else {  // Gemm: W is [K, M], or [M, K] with trans_b.
    if (w->shape.size() != 2) return false;
    per_column = !p.attrs.trans_b;
    channels = per_column ? w->shape[1] : w->shape[0];
    rows_per_channel = per_column ? 1 : w->shape[1];
    cols = per_column ? w->shape[0] : 1;
  }
  if (channels != m) return false;

  std::vector<float> old_bias(m, 0.0f);
  if (p.inputs.size() > 2) {
    const Tensor* b = g.FindConstant(p.inputs[2]);
    if (b == nullptr) return false;
    const float beta = p.op == Op::kGemm ? p.attrs.beta : 1.0f;
    if (b->size() == m) {
      for (int64_t c = 0; c < m; ++c) old_bias[c] = beta * b->data[c];
    } else if (b->size() == 1) {
      std::fill(old_bias.begin(), old_bias.end(), beta * b->data[0]);
    } else {
      return false;  // A bias varying along the batch cannot fold.
    }
  }
  const float alpha = p.op == Op::kGemm ? p.attrs.alpha : 1.0f;
  Tensor new_w = *w;
  Tensor new_b{{m}, std::vector<float>(m)};
  for (int64_t c = 0; c < m; ++c) {
    const float k = scale->data[c] / std::sqrt(var->data[c] + bn.attrs.epsilon);
    if (per_column) {
      for (int64_t r = 0; r < cols; ++r) new_w.data[r * m + c] *= alpha * k;
    } else {
      for (int64_t r = 0; r < rows_per_channel; ++r) {
        new_w.data[c * rows_per_channel + r] *= alpha * k;
      }
    }
    new_b.data[c] = (old_bias[c] - mean->data[c]) * k + bias->data[c];
  }
  const std::string w_name = FreshName(g, absl::StrCat(p.name, "/folded_w"));
  const std::string b_name = FreshName(g, absl::StrCat(p.name, "/folded_b"));
  g.constants[w_name] = std::move(new_w);
  g.constants[b_name] = std::move(new_b);
  p.inputs.resize(2);
  p.inputs[1] = w_name;
  p.inputs.push_back(b_name);
  if (p.op == Op::kGemm) {
    p.attrs.alpha = 1.0f;
    p.attrs.beta = 1.0f;
  }
  p.outputs[0] = bn.outputs[0];
  return true;
}

}  // namespace

int FoldBatchNorm(Graph& g) {
  int folded = 0;
  std::vector<bool> erase(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& p = g.nodes[i];
    if ((p.op != Op::kConv && p.op != Op::kGemm) ||
        p.attrs.activation.kind != Activation::Kind::kNone) {
      continue;
    }
    const Uses uses(g);
    const int r = uses.SoleReader(p.outputs[0]);
    if (r < 0 || erase[r] || g.nodes[r].op != Op::kBatchNorm) continue;
    if (FoldInto(g, p, g.nodes[r])) {
      erase[r] = true;
      ++folded;
    }
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!erase[i]) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
  return folded;
}

int FuseActivations(Graph& g) {
  int fused = 0;
  std::vector<bool> erase(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& p = g.nodes[i];
    if (p.op != Op::kConv && p.op != Op::kGemm && p.op != Op::kMatMul) {
      continue;
    }
    if (p.attrs.activation.kind != Activation::Kind::kNone) continue;
    const Uses uses(g);
    const int r = uses.SoleReader(p.outputs[0]);
    if (r < 0 || erase[r]) continue;
    const Node& act = g.nodes[r];
    if (act.op == Op::kRelu) {
      p.attrs.activation = {Activation::Kind::kRelu, 0.0f, 0.0f};
    } else if (act.op == Op::kClip) {
      p.attrs.activation = {Activation::Kind::kClip, act.attrs.min,
                            act.attrs.max};
    } else {
      continue;
    }
    p.outputs[0] = act.outputs[0];
    erase[r] = true;
    ++fused;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!erase[i]) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
  return fused;
}

int RemoveDeadNodes(Graph& g) {
  const size_t before = g.nodes.size();
  std::set<std::string> outputs;
  for (const ValueInfo& o : g.outputs) outputs.insert(o.name);
  // Identity: readers read its input.
  std::map<std::string, std::string> rename;
  std::vector<Node> kept;
  for (Node& n : g.nodes) {
    for (std::string& in : n.inputs) {
      auto it = rename.find(in);
      if (it != rename.end()) in = it->second;
    }
    if (n.op == Op::kIdentity && !outputs.count(n.outputs[0])) {
      rename[n.outputs[0]] = n.inputs[0];
      continue;
    }
    kept.push_back(std::move(n));
  }
  // Nodes nobody reads, from the back.
  std::set<std::string> live = outputs;
  std::vector<Node> alive;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    const bool needed =
        std::any_of(it->outputs.begin(), it->outputs.end(),
                    [&](const std::string& o) { return live.count(o) > 0; });
    if (!needed) continue;
    live.insert(it->inputs.begin(), it->inputs.end());
    alive.push_back(std::move(*it));
  }
  std::reverse(alive.begin(), alive.end());
  g.nodes = std::move(alive);
  for (auto it = g.constants.begin(); it != g.constants.end();) {
    it = live.count(it->first) ? std::next(it) : g.constants.erase(it);
  }
  return static_cast<int>(before - g.nodes.size());
}

namespace {

// Producers and readers of values, for matching patterns.
struct Dataflow {
  std::map<std::string, int> producer;
  Uses uses;

  explicit Dataflow(const Graph& g) : uses(g) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (const std::string& out : g.nodes[i].outputs) {
        producer[out] = static_cast<int>(i);
      }
    }
  }
  // The node computing `value` when it is `op` and `value` has exactly
  // `readers` readers (and is not a graph output); else null.
  const Node* Made(const Graph& g, const std::string& value, Op op,
                   int readers = 1) const {
    auto it = producer.find(value);
    if (it == producer.end() || g.nodes[it->second].op != op) return nullptr;
    auto r = uses.readers.find(value);
    if (r == uses.readers.end() || r->second != readers ||
        uses.outputs.count(value)) {
      return nullptr;
    }
    return &g.nodes[it->second];
  }
};

// The scalar value of constant `name`, if it is one.
std::optional<float> Scalar(const Graph& g, const std::string& name) {
  const Tensor* t = g.FindConstant(name);
  if (t == nullptr || t->data.size() != 1) return std::nullopt;
  return t->data[0];
}

bool Near(std::optional<float> v, double want) {
  return v.has_value() && std::fabs(*v - want) <= 1e-6 * std::fabs(want);
}

// For a binary node with one scalar constant operand: the other operand.
std::optional<std::string> OtherOf(const Graph& g, const Node& n,
                                   double scalar) {
  if (n.inputs.size() != 2) return std::nullopt;
  for (int k : {0, 1}) {
    if (Near(Scalar(g, n.inputs[k]), scalar)) return n.inputs[1 - k];
  }
  return std::nullopt;
}

}  // namespace

int FuseGelu(Graph& g) {
  int fused = 0;
  // From the end, so a pattern is matched whole before any part of it.
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Dataflow flow(g);
    Node& last = g.nodes[i];
    if (last.op != Op::kMul) continue;
    // Either (x * gate) * 0.5 or (x * 0.5) * gate, gate = 1 + erf(x / sqrt 2).
    std::string x;
    std::string gate;
    if (auto product = OtherOf(g, last, 0.5)) {
      const Node* mul = flow.Made(g, *product, Op::kMul);
      if (mul == nullptr) continue;
      for (int k : {0, 1}) {
        if (flow.Made(g, mul->inputs[k], Op::kAdd) != nullptr) {
          gate = mul->inputs[k];
          x = mul->inputs[1 - k];
        }
      }
    } else {
      for (int k : {0, 1}) {
        const Node* half = flow.Made(g, last.inputs[k], Op::kMul);
        if (half == nullptr) continue;
        if (auto v = OtherOf(g, *half, 0.5)) {
          x = *v;
          gate = last.inputs[1 - k];
        }
      }
    }
    if (x.empty() || gate.empty()) continue;
    const Node* add = flow.Made(g, gate, Op::kAdd);
    if (add == nullptr) continue;
    auto erf_out = OtherOf(g, *add, 1.0);
    const Node* erf = erf_out ? flow.Made(g, *erf_out, Op::kErf) : nullptr;
    if (erf == nullptr) continue;
    const Node* div = flow.Made(g, erf->inputs[0], Op::kDiv);
    const Node* mul = flow.Made(g, erf->inputs[0], Op::kMul);
    const bool scaled =
        (div != nullptr && div->inputs[0] == x &&
         Near(Scalar(g, div->inputs[1]), std::sqrt(2.0))) ||
        (mul != nullptr && OtherOf(g, *mul, 1.0 / std::sqrt(2.0)) == x);
    if (!scaled) continue;
    // The chain's other nodes are now unread: RemoveDeadNodes drops them.
    last.op = Op::kGelu;
    last.inputs = {x};
    last.attrs = Attributes{};
    ++fused;
  }
  if (fused > 0) RemoveDeadNodes(g);
  return fused;
}

int FuseLayerNorm(Graph& g) {
  std::map<std::string, std::vector<int64_t>> given;
  for (const ValueInfo& in : g.inputs) {
    std::vector<int64_t> dims = in.shape;
    std::replace(dims.begin(), dims.end(), kBatch, int64_t{1});
    given[in.name] = dims;
  }
  auto shapes = InferShapes(g, given);
  if (!shapes.ok()) return 0;
  int fused = 0;
  // From the end, so a pattern is matched whole before any part of it.
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Dataflow flow(g);
    Node& last = g.nodes[i];
    // Peel the optional bias and scale off the end.
    std::string value = last.outputs[0];
    std::string bias;
    std::string scale;
    const Node* n = &last;
    auto constant_operand = [&](const Node& b, std::string& constant) {
      for (int k : {0, 1}) {
        if (g.FindConstant(b.inputs[k]) != nullptr &&
            g.FindConstant(b.inputs[1 - k]) == nullptr) {
          constant = b.inputs[k];
          return b.inputs[1 - k];
        }
      }
      return std::string();
    };
    if (n->op == Op::kAdd) {
      value = constant_operand(*n, bias);
      n = value.empty() ? nullptr : flow.Made(g, value, Op::kMul);
      if (n == nullptr && !value.empty()) n = flow.Made(g, value, Op::kDiv);
    }
    if (n != nullptr && n->op == Op::kMul) {
      value = constant_operand(*n, scale);
      n = value.empty() ? nullptr : flow.Made(g, value, Op::kDiv);
    }
    if (n == nullptr || n->op != Op::kDiv) continue;
    const Node& div = *n;
    const Node* sqrt = flow.Made(g, div.inputs[1], Op::kSqrt);
    if (sqrt == nullptr) continue;
    const Node* add = flow.Made(g, sqrt->inputs[0], Op::kAdd);
    if (add == nullptr || !Scalar(g, add->inputs[1]).has_value()) continue;
    const float epsilon = *Scalar(g, add->inputs[1]);
    const Node* var = flow.Made(g, add->inputs[0], Op::kReduceMean);
    if (var == nullptr) continue;
    // d = x - m is read by the square and by the Div.
    const std::string& d = div.inputs[0];
    const Node* square = flow.Made(g, var->inputs[0], Op::kPow);
    int d_readers = 2;
    if (square != nullptr) {
      if (square->inputs[0] != d || !Near(Scalar(g, square->inputs[1]), 2.0)) {
        continue;
      }
    } else {
      square = flow.Made(g, var->inputs[0], Op::kMul);
      if (square == nullptr || square->inputs[0] != d ||
          square->inputs[1] != d) {
        continue;
      }
      d_readers = 3;
    }
    const Node* sub = flow.Made(g, d, Op::kSub, d_readers);
    if (sub == nullptr) continue;
    const std::string& x = sub->inputs[0];
    const Node* mean = flow.Made(g, sub->inputs[1], Op::kReduceMean);
    if (mean == nullptr || mean->inputs[0] != x) continue;
    // Both means over the same trailing dims, kept.
    const std::vector<int64_t>& x_shape = shapes->at(x);
    const auto rank = static_cast<int64_t>(x_shape.size());
    const std::vector<int64_t>& axes = mean->attrs.axes;
    bool trailing = !axes.empty() && mean->attrs.keep_dims &&
                    var->attrs.keep_dims && var->attrs.axes == axes;
    for (size_t k = 0; trailing && k < axes.size(); ++k) {
      trailing = axes[k] == rank - static_cast<int64_t>(axes.size() - k);
    }
    if (!trailing) continue;
    const int64_t axis = axes[0];
    const std::vector<int64_t> normalized(x_shape.begin() + axis,
                                          x_shape.end());
    // Scale and bias: constants of the normalized shape, leading 1s aside.
    auto fits = [&](const std::string& name) {
      if (name.empty()) return true;
      std::vector<int64_t> dims = g.constants.at(name).shape;
      while (dims.size() > normalized.size() && dims.front() == 1) {
        dims.erase(dims.begin());
      }
      return dims == normalized;
    };
    if (!fits(scale) || !fits(bias)) continue;
    // The constant as kLayerNorm reads it: reshaped, or made (scale 1).
    auto normalize = [&](const std::string& name, const std::string& made) {
      if (name.empty()) {
        std::string ones = FreshName(g, made);
        g.constants[ones] = Tensor{
            normalized, std::vector<float>(NumElements(normalized), 1.0f)};
        return ones;
      }
      const Tensor& t = g.constants.at(name);
      if (t.shape == normalized) return name;
      std::string copy = FreshName(g, name + "/normalized");
      g.constants[copy] = Tensor{normalized, t.data};
      return copy;
    };
    const std::string x_name = x;
    const std::string out = last.outputs[0];
    std::vector<std::string> inputs = {x_name,
                                       normalize(scale, last.name + "/scale")};
    if (!bias.empty()) inputs.push_back(normalize(bias, ""));
    last.op = Op::kLayerNorm;
    last.inputs = std::move(inputs);
    last.outputs = {out};
    last.attrs = Attributes{};
    last.attrs.axis = axis;
    last.attrs.epsilon = epsilon;
    ++fused;
  }
  if (fused > 0) RemoveDeadNodes(g);
  return fused;
}

void Optimize(Graph& graph) {
  RemoveDeadNodes(graph);
  FoldBatchNorm(graph);
  FuseActivations(graph);
  FuseGelu(graph);
  FuseLayerNorm(graph);
  RemoveDeadNodes(graph);
}

}  // namespace esb::graph
