#include "core/graph/passes.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

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

void Optimize(Graph& graph) {
  RemoveDeadNodes(graph);
  FoldBatchNorm(graph);
  FuseActivations(graph);
  RemoveDeadNodes(graph);
}

}  // namespace esb::graph
