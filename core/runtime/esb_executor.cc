#include "core/runtime/esb_executor.h"

#include <cstdint>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/runtime/cpu_paths.h"
#include "core/runtime/esb_layers.h"

namespace esb::runtime {
namespace {

// Why no layer may take the fast path on this machine, or "".
absl::StatusOr<std::string> MachineReason() {
  absl::StatusOr<CpuPaths> paths = DetectCpuPaths();
  if (!paths.ok()) return paths.status();
  return std::move(paths->no_int8_reason);
}

std::string Describe(const graph::Graph& graph,
                     const internal::QuantizedLayers& layers) {
  const int total = static_cast<int>(layers.by_node.size());
  int fast = 0;
  std::map<int64_t, int> split;  // Layers by chunk count, when split.
  std::string slow;
  for (const auto& [index, layer] : layers.by_node) {
    if (layer.fast) {
      ++fast;
      if (layer.splits > 1) ++split[layer.splits];
      continue;
    }
    absl::StrAppend(&slow, slow.empty() ? "" : ", ", layer.reason, " (layer '",
                    graph.nodes[index].name, "')");
  }
  std::string out;
  if (fast > 0 || total == 0) {
    out = absl::StrCat("int8 fast path on ", fast, " of ", total, " layers");
  }
  if (!split.empty()) {
    absl::StrAppend(&out,
                    " (K split so that every chunk's accumulator stays within "
                    "2^24: ");
    bool first = true;
    for (const auto& [chunks, count] : split) {
      absl::StrAppend(&out, first ? "" : ", ", count,
                      first ? (count == 1 ? " layer" : " layers") : "", " in ",
                      chunks, first ? " chunks" : "");
      first = false;
    }
    absl::StrAppend(&out, ")");
  }
  if (fast < total) {
    absl::StrAppend(&out, out.empty() ? "" : "; ", "reference path on ",
                    total - fast, fast > 0 ? "" : absl::StrCat(" of ", total),
                    total - fast == 1 ? " layer: " : " layers: ", slow);
  }
  if (layers.unquantized > 0) {
    absl::StrAppend(&out, "; ", layers.unquantized,
                    " Conv/Gemm/MatMul without a layer entry in FP32");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EsbExecutor>> EsbExecutor::Create(
    const graph::Graph& graph, const std::map<std::string, LayerQuant>& layers,
    const EsbExecutorOptions& options, const WeightIntegers* integers) {
  std::string no_fast;
  if (options.path == EsbExecutorOptions::Path::kReference) {
    no_fast = "reference path requested";
  } else {
    auto reason = MachineReason();
    if (!reason.ok()) return reason.status();
    no_fast = *std::move(reason);
  }
  auto prepared = internal::PrepareLayers(graph, layers, no_fast, integers);
  if (!prepared.ok()) return prepared.status();
  auto shared =
      std::make_shared<const internal::QuantizedLayers>(*std::move(prepared));
  std::map<std::string, bool> fast;
  std::map<std::string, int64_t> k_chunks;
  int requantized = 0;
  for (const auto& [index, layer] : shared->by_node) {
    fast[graph.nodes[index].name] = layer.fast;
    if (layer.fast) k_chunks[graph.nodes[index].name] = layer.splits;
    requantized += layer.next_format.has_value();
  }
  std::string description = Describe(graph, *shared);
  ExecutorOptions executor_options;
  executor_options.threads = options.threads;
  executor_options.max_cached_shapes = options.max_cached_shapes;
  executor_options.budget = options.budget;
  executor_options.max_idle_runs = options.max_idle_runs;
  executor_options.max_concurrent_runs = options.max_concurrent_runs;
  executor_options.slice_cache_bytes = options.slice_cache_bytes;
  auto executor =
      Executor::CreateWithLayers(graph, executor_options, std::move(shared));
  if (!executor.ok()) return executor.status();
  return std::unique_ptr<EsbExecutor>(
      new EsbExecutor(*std::move(executor), std::move(description),
                      std::move(fast), std::move(k_chunks), requantized));
}

absl::StatusOr<std::vector<graph::Tensor>> EsbExecutor::Run(
    const std::vector<graph::Tensor>& inputs) {
  return executor_->Run(inputs);
}

}  // namespace esb::runtime
