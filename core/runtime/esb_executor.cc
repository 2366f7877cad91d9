#include "core/runtime/esb_executor.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/runtime/cpu_paths.h"
#include "core/runtime/esb_layers.h"

namespace esb::runtime {
namespace {

// " (K split so that ...: 1 layer in 4 chunks, 2 in 8)" for the layers of
// `path` that are split, or "".
std::string SplitClause(const internal::QuantizedLayers& layers,
                        LayerPath path) {
  std::map<int64_t, int> split;  // Layers by chunk count.
  for (const auto& [index, layer] : layers.by_node) {
    if (layer.path == path && layer.splits > 1) ++split[layer.splits];
  }
  if (split.empty()) return "";
  std::string out =
      " (K split so that every chunk's accumulator stays within 2^24: ";
  bool first = true;
  for (const auto& [chunks, count] : split) {
    absl::StrAppend(&out, first ? "" : ", ", count,
                    first ? (count == 1 ? " layer" : " layers") : "", " in ",
                    chunks, first ? " chunks" : "");
    first = false;
  }
  return absl::StrCat(out, ")");
}

// "reason (layer 'a'), other (layers 'b', 'c', 'd' and 2 more)" for the
// layers of `path`, in the order of their first layer.
std::string Reasons(const graph::Graph& graph,
                    const internal::QuantizedLayers& layers, LayerPath path) {
  constexpr size_t kNamed = 3;
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& [index, layer] : layers.by_node) {
    if (layer.path != path) continue;
    const std::string& reason = layer.reason;
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.first == reason; });
    if (it == groups.end()) {
      groups.push_back({reason, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(graph.nodes[index].name);
  }
  std::string out;
  for (const auto& [reason, names] : groups) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", reason,
                    names.size() == 1 ? " (layer " : " (layers ");
    for (size_t i = 0; i < names.size() && i < kNamed; ++i) {
      absl::StrAppend(&out, i == 0 ? "'" : ", '", names[i], "'");
    }
    if (names.size() > kNamed) {
      absl::StrAppend(&out, " and ", names.size() - kNamed, " more");
    }
    absl::StrAppend(&out, ")");
  }
  return out;
}

std::string Describe(const graph::Graph& graph,
                     const internal::QuantizedLayers& layers) {
  const int total = static_cast<int>(layers.by_node.size());
  std::map<LayerPath, int> count;
  for (const auto& [index, layer] : layers.by_node) ++count[layer.path];
  const int int8 = count[LayerPath::kInt8];
  std::string out;
  if (int8 > 0 || total == 0) {
    out = absl::StrCat("int8 fast path on ", int8, " of ", total, " layers",
                       SplitClause(layers, LayerPath::kInt8));
  }
  // "<what> on N layers: reasons" after others, "... on N of T ..." first.
  auto clause = [&](const char* what, LayerPath path) {
    const int n = count[path];
    if (n == 0) return;
    absl::StrAppend(&out, out.empty() ? "" : "; ", what, " on ", n,
                    out.empty() ? absl::StrCat(" of ", total) : "",
                    n == 1 ? " layer" : " layers", SplitClause(layers, path),
                    ": ", Reasons(graph, layers, path));
  };
  clause("exact f32 path", LayerPath::kFloat);
  clause("reference path", LayerPath::kReference);
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
  internal::PathRules rules;
  if (options.path == EsbExecutorOptions::Path::kReference) {
    rules.no_fast = "reference path requested";
  } else if (options.path == EsbExecutorOptions::Path::kExactFloat) {
    rules.no_int8 = "exact f32 path requested";
  } else {
    absl::StatusOr<CpuPaths> cpu = DetectCpuPaths();
    if (!cpu.ok()) return cpu.status();
    rules.no_int8 = std::move(cpu->no_int8_reason);
    rules.int16_pairs = cpu->int16_pairs;
  }
  auto prepared = internal::PrepareLayers(graph, layers, rules, integers);
  if (!prepared.ok()) return prepared.status();
  auto shared =
      std::make_shared<const internal::QuantizedLayers>(*std::move(prepared));
  std::map<std::string, LayerPath> paths;
  std::map<std::string, int64_t> k_chunks;
  int requantized = 0;
  for (const auto& [index, layer] : shared->by_node) {
    paths[graph.nodes[index].name] = layer.path;
    if (layer.fast()) k_chunks[graph.nodes[index].name] = layer.splits;
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
                      std::move(paths), std::move(k_chunks), requantized));
}

absl::StatusOr<std::vector<graph::Tensor>> EsbExecutor::Run(
    const std::vector<graph::Tensor>& inputs) {
  return executor_->Run(inputs);
}

}  // namespace esb::runtime
