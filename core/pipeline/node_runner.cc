#include "core/pipeline/node_runner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace esb::pipeline {

NodeRunner::NodeRunner(const graph::Graph& graph, int threads)
    : graph_(graph), threads_(threads) {}

absl::StatusOr<std::unique_ptr<runtime::Executor>> NodeRunner::Build(
    const graph::Node& node, const ValueMap& values,
    const std::map<std::string, graph::Tensor>& constants, bool drop_activation,
    std::vector<std::string>* inputs) const {
  graph::Graph g;
  g.opset = graph_.opset;
  graph::Node n = node;
  if (drop_activation) n.attrs.activation = graph::Activation{};
  for (const std::string& in : node.inputs) {
    if (auto c = constants.find(in); c != constants.end()) {
      g.constants[in] = c->second;
      continue;
    }
    if (const graph::Tensor* c = graph_.FindConstant(in)) {
      g.constants[in] = *c;
      continue;
    }
    if (std::find(inputs->begin(), inputs->end(), in) != inputs->end()) {
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
  g.nodes.push_back(std::move(n));
  runtime::ExecutorOptions options;
  options.threads = threads_;
  options.max_cached_shapes = 1;
  return runtime::Executor::Create(g, options);
}

absl::StatusOr<std::vector<graph::Tensor>> NodeRunner::Execute(
    runtime::Executor& executor, const std::vector<std::string>& inputs,
    const ValueMap& values) {
  std::vector<graph::Tensor> feed;
  feed.reserve(inputs.size());
  for (const std::string& in : inputs) feed.push_back(values.at(in));
  return executor.Run(feed);
}

absl::StatusOr<std::vector<graph::Tensor>> NodeRunner::Run(
    const graph::Node& node, const ValueMap& values) {
  auto it = cache_.find(node.name);
  if (it == cache_.end()) {
    Cached c;
    absl::StatusOr<std::unique_ptr<runtime::Executor>> e =
        Build(node, values, {}, false, &c.inputs);
    if (!e.ok()) return e.status();
    c.executor = *std::move(e);
    it = cache_.emplace(node.name, std::move(c)).first;
  }
  return Execute(*it->second.executor, it->second.inputs, values);
}

absl::StatusOr<std::vector<graph::Tensor>> NodeRunner::RunWith(
    const graph::Node& node, const ValueMap& values,
    const std::map<std::string, graph::Tensor>& constants,
    bool drop_activation) {
  std::vector<std::string> inputs;
  absl::StatusOr<std::unique_ptr<runtime::Executor>> e =
      Build(node, values, constants, drop_activation, &inputs);
  if (!e.ok()) return e.status();
  return Execute(**e, inputs, values);
}

}  // namespace esb::pipeline
