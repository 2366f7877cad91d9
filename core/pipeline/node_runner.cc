#include "core/pipeline/node_runner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace esb::pipeline {

NodeRunner::NodeRunner(const graph::Graph& graph, int threads)
    : graph_(graph), threads_(threads) {}

absl::StatusOr<std::unique_ptr<runtime::Executor>> NodeRunner::Build(
    const graph::Node& node, const ValueMap& values,
    const std::map<std::string, graph::Tensor>& constants,
    const std::map<std::string, graph::Tensor>& fed,
    std::vector<std::string>* inputs) const {
  graph::Graph g;
  g.opset = graph_.opset;
  for (const std::string& in : node.inputs) {
    if (std::find(inputs->begin(), inputs->end(), in) != inputs->end()) {
      continue;
    }
    if (auto f = fed.find(in); f != fed.end()) {
      g.inputs.push_back(graph::ValueInfo{in, f->second.shape});
      inputs->push_back(in);
      continue;
    }
    if (auto c = constants.find(in); c != constants.end()) {
      g.constants[in] = c->second;
      continue;
    }
    if (const graph::Tensor* c = graph_.FindConstant(in)) {
      g.constants[in] = *c;
      continue;
    }
    auto v = values.find(in);
    if (v == values.end()) {
      return absl::InternalError(
          absl::StrCat("node '", node.name, "': no value for input ", in));
    }
    std::vector<int64_t> shape = v->second.shape;
    if (!shape.empty()) shape[0] = graph::kBatch;
    g.inputs.push_back(graph::ValueInfo{in, shape});
    inputs->push_back(in);
  }
  for (const std::string& out : node.outputs) {
    g.outputs.push_back(graph::ValueInfo{out, {}});
  }
  g.nodes.push_back(node);
  runtime::ExecutorOptions options;
  options.threads = threads_;
  options.max_cached_shapes = 1;
  return runtime::Executor::Create(g, options);
}

absl::StatusOr<std::vector<graph::Tensor>> NodeRunner::Execute(
    runtime::Executor& executor, const std::vector<std::string>& inputs,
    const ValueMap& values, const std::map<std::string, graph::Tensor>& fed) {
  std::vector<graph::Tensor> feed;
  feed.reserve(inputs.size());
  for (const std::string& in : inputs) {
    auto f = fed.find(in);
    feed.push_back(f != fed.end() ? f->second : values.at(in));
  }
  return executor.Run(feed);
}

absl::StatusOr<std::vector<graph::Tensor>> NodeRunner::Run(
    const graph::Node& node, const ValueMap& values) {
  auto it = cache_.find(node.name);
  if (it == cache_.end()) {
    Cached c;
    absl::StatusOr<std::unique_ptr<runtime::Executor>> e =
        Build(node, values, {}, {}, &c.inputs);
    if (!e.ok()) return e.status();
    c.executor = *std::move(e);
    it = cache_.emplace(node.name, std::move(c)).first;
  }
  return Execute(*it->second.executor, it->second.inputs, values, {});
}

absl::StatusOr<std::vector<graph::Tensor>> NodeRunner::RunWith(
    const graph::Node& node, const ValueMap& values,
    const std::map<std::string, graph::Tensor>& constants,
    bool drop_activation) {
  graph::Node n = node;
  if (drop_activation) n.attrs.activation = graph::Activation{};

  // The replaced weights (input 1) and bias (input 2) become executor
  // inputs. Gemm's alpha and beta are applied here, with the same float
  // products the runtime uses when it folds constant B and C, so the
  // executor reads B and C as given (it needs alpha and beta 1 for that).
  std::map<std::string, graph::Tensor> fed;
  bool reusable = true;
  for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
    auto c = constants.find(n.inputs[i]);
    if (c != constants.end()) fed[n.inputs[i]] = c->second;
  }
  if (n.op == graph::Op::kGemm) {
    if (auto b = fed.find(n.inputs[1]); b != fed.end()) {
      if (n.attrs.alpha != 1.0f) {
        for (float& v : b->second.data) v = n.attrs.alpha * v;
        n.attrs.alpha = 1.0f;
      }
    }
    if (n.inputs.size() > 2) {
      auto c = fed.find(n.inputs[2]);
      if (c != fed.end() && n.attrs.beta == 0.0f) {
        fed.erase(c);  // The runtime ignores C then.
      } else if (c != fed.end()) {
        const graph::Tensor& b = fed.count(n.inputs[1])
                                     ? fed.at(n.inputs[1])
                                     : *graph_.FindConstant(n.inputs[1]);
        const int64_t m = n.attrs.trans_b ? b.shape[0] : b.shape[1];
        std::vector<int64_t> c2 = c->second.shape;
        while (c2.size() < 2) c2.insert(c2.begin(), 1);
        if (c2.size() == 2 && c2[0] == 1 && (c2[1] == 1 || c2[1] == m)) {
          // One row: beta * C broadcast to [M], as the runtime folds it.
          graph::Tensor folded{{m}, std::vector<float>(m)};
          for (int64_t j = 0; j < m; ++j) {
            folded.data[j] = n.attrs.beta * c->second.data[c2[1] == 1 ? 0 : j];
          }
          c->second = std::move(folded);
          n.attrs.beta = 1.0f;
        } else {
          reusable = false;  // Per-row C: folded by a fresh executor.
        }
      }
    }
  }
  if (!reusable) {
    std::vector<std::string> inputs;
    absl::StatusOr<std::unique_ptr<runtime::Executor>> e =
        Build(n, values, constants, {}, &inputs);
    if (!e.ok()) return e.status();
    return Execute(**e, inputs, values, {});
  }

  // One executor per node variant; only the fed tensors change per call.
  std::vector<std::string> fed_names;
  for (const auto& [name, tensor] : fed) fed_names.push_back(name);
  const std::string key = absl::StrCat(
      drop_activation, "|", absl::StrJoin(n.inputs, ","), "|",
      absl::StrJoin(fed_names, ","), "|", n.attrs.alpha, "|", n.attrs.beta);
  std::map<std::string, Cached>& variants = with_cache_[node.name];
  auto it = variants.find(key);
  if (it == variants.end()) {
    Cached c;
    absl::StatusOr<std::unique_ptr<runtime::Executor>> e =
        Build(n, values, constants, fed, &c.inputs);
    if (!e.ok()) return e.status();
    c.executor = *std::move(e);
    it = variants.emplace(key, std::move(c)).first;
  }
  return Execute(*it->second.executor, it->second.inputs, values, fed);
}

}  // namespace esb::pipeline
