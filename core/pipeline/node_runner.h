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

  // Drops the executors cached for `node` (and their copies of the weights).
  void Forget(const std::string& node) {
    cache_.erase(node);
    with_cache_.erase(node);
  }

  // The same with some constants replaced (e.g. quantized weights) and,
  // when `drop_activation`, without the node's fused activation. A
  // replaced weight or bias is fed to the executor as an input (the
  // runtime reorders it at each run, giving bit for bit what packing it as
  // a constant gives), so one executor per node and variant serves every
  // candidate; Gemm's alpha and beta are applied to what is fed. A Gemm C
  // with one row per batch row is the exception and builds a fresh
  // executor each call.
  absl::StatusOr<std::vector<graph::Tensor>> RunWith(
      const graph::Node& node, const ValueMap& values,
      const std::map<std::string, graph::Tensor>& constants,
      bool drop_activation);

 private:
  // A one-node graph for `node`: inputs in `fed` and values from `values`
  // become graph inputs (listed in *inputs, in order), `constants` and the
  // graph's constants its initializers.
  absl::StatusOr<std::unique_ptr<runtime::Executor>> Build(
      const graph::Node& node, const ValueMap& values,
      const std::map<std::string, graph::Tensor>& constants,
      const std::map<std::string, graph::Tensor>& fed,
      std::vector<std::string>* inputs) const;
  static absl::StatusOr<std::vector<graph::Tensor>> Execute(
      runtime::Executor& executor, const std::vector<std::string>& inputs,
      const ValueMap& values, const std::map<std::string, graph::Tensor>& fed);

  const graph::Graph& graph_;
  int threads_;
  struct Cached {
    std::unique_ptr<runtime::Executor> executor;
    std::vector<std::string> inputs;
  };
  std::map<std::string, Cached> cache_;
  // RunWith's executors by node name, then variant.
  std::map<std::string, std::map<std::string, Cached>> with_cache_;
};

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_NODE_RUNNER_H_
