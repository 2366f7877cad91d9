// Runs single nodes of a graph on the FP32 executor: the building block of
// layer-by-layer fitting, where two streams of activations (FP32 and
// quantized) flow through the same nodes.
//
// Thread-compatible.
#ifndef ESB_CORE_PIPELINE_NODE_RUNNER_H_
#define ESB_CORE_PIPELINE_NODE_RUNNER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/graph/graph.h"
#include "core/runtime/executor.h"

namespace esb::pipeline {

using ValueMap = std::map<std::string, graph::Tensor>;

class NodeRunner {
 public:
  NodeRunner(const graph::Graph& graph, int threads);

  // The node's outputs from `values` (its non-constant inputs) and the
  // graph's constants. The executor is built once per node and reused.
  absl::StatusOr<std::vector<graph::Tensor>> Run(const graph::Node& node,
                                                 const ValueMap& values);

  // Drops the executor cached for `node` (and its copy of the weights).
  void Forget(const std::string& node) { cache_.erase(node); }

  // The same with some constants replaced (e.g. quantized weights) and,
  // when `drop_activation`, without the node's fused activation. Builds a
  // fresh executor each call.
  absl::StatusOr<std::vector<graph::Tensor>> RunWith(
      const graph::Node& node, const ValueMap& values,
      const std::map<std::string, graph::Tensor>& constants,
      bool drop_activation);

 private:
  absl::StatusOr<std::unique_ptr<runtime::Executor>> Build(
      const graph::Node& node, const ValueMap& values,
      const std::map<std::string, graph::Tensor>& constants,
      bool drop_activation, std::vector<std::string>* inputs) const;
  static absl::StatusOr<std::vector<graph::Tensor>> Execute(
      runtime::Executor& executor, const std::vector<std::string>& inputs,
      const ValueMap& values);

  const graph::Graph& graph_;
  int threads_;
  struct Cached {
    std::unique_ptr<runtime::Executor> executor;
    std::vector<std::string> inputs;
  };
  std::map<std::string, Cached> cache_;
};

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_NODE_RUNNER_H_
