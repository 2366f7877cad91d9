// Exact ESB inference on the CPU.
//
// Every Conv, Gemm and MatMul node with an entry in the layer map runs with
// the ESB semantics of core/esb/layer_quant.h: the input is rounded to its
// ESB grid (input_format, input_alpha), the weights per output channel
// (weight_format, weight_alpha), products are accumulated exactly in
// integers, and y = act(float(acc) * s[m] + bias[m]) exactly as
// esb::Dequantize computes it (bias: Conv B; Gemm beta * C for a scalar or
// per-column C, other C shapes refused; MatMul none). Every other node
// (pooling, Add, Concat, unfolded BatchNorm, Softmax..., and quantizable
// nodes without an entry) runs in FP32 exactly as runtime::Executor runs it.
//
// Three implementations of a quantized layer, bit-identical by
// construction and by test:
//   reference   plain integer loops with int64 accumulators;
//   int8 fast   oneDNN u8/s8 x s8 -> s32 convolution / matmul (weights
//               packed once, no scales or post-ops), then a vectorised
//               epilogue with Dequantize's float operations that writes
//               floats or, when the output only feeds int8 layers reading
//               it with one format and scale, their u8/s8 input directly;
//   exact f32   the same convolution / matmul in f32 on the integer views
//               held as floats (exact while every sum stays within 2^24),
//               for formats that do not fit int8 and layers the CPU's int8
//               kernels cannot run exactly (without VNNI: pairs of
//               products past int16, signed inputs into convolutions;
//               esb_layers.h); the same epilogue.
// Either fast path is exact only within 2^24, so a layer whose worst-case
// accumulator is larger has its reduction (K) split into equal chunks that
// each stay within it, run as one grouped convolution, and the epilogue
// adds the chunks' partial sums in int32.
// kAuto takes the int8 path for each layer whose formats fit int8 where
// the CPU has it, else the exact f32 path where the bounds allow, else the
// reference (core/runtime/esb_layers.h lists the conditions), and
// Description() says which and why. kExactFloat leaves out the int8 path;
// kReference runs the reference everywhere.
//
// Thread-safe: Run may be called concurrently; runs proceed in parallel as
// Executor's do (executor.h).
#ifndef ESB_CORE_RUNTIME_ESB_EXECUTOR_H_
#define ESB_CORE_RUNTIME_ESB_EXECUTOR_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/esb/layer_quant.h"
#include "core/graph/graph.h"
#include "core/runtime/executor.h"

namespace esb::runtime {

// Which implementation runs a quantized layer (see the file comment).
enum class LayerPath { kInt8, kFloat, kReference };

struct EsbExecutorOptions {
  // OpenMP threads for a run, as ExecutorOptions::threads (0: the CPUs this
  // process may use).
  int threads = 0;
  // As the ExecutorOptions fields of the same names.
  int max_cached_shapes = ExecutorOptions{}.max_cached_shapes;
  MemoryBudget budget;
  int max_idle_runs = ExecutorOptions{}.max_idle_runs;
  int max_concurrent_runs = ExecutorOptions{}.max_concurrent_runs;
  int64_t slice_cache_bytes = ExecutorOptions{}.slice_cache_bytes;
  // kAuto: per layer, the int8 fast path where it is exact here, else the
  // exact f32 path, else the reference. kExactFloat: as kAuto without the
  // int8 path. kReference: the reference path for every layer.
  enum class Path { kAuto, kExactFloat, kReference };
  Path path = Path::kAuto;
};

// Runs one graph with ESB layers; see the file comment.
// Thread-safe: Run may be called concurrently (the layer tables are
// immutable and shared; each run has its own arena and stream).
class EsbExecutor {
 public:
  // `layers` maps node names to their quantization (pipeline::Calibrate
  // makes one). INVALID_ARGUMENT naming the layer for an entry that names
  // no Conv/Gemm/MatMul node, unusable scales or weights, or a Gemm C that
  // is not a scalar or per-column; otherwise as Executor::Create (the plan
  // for batch 1 is built here when the input shape allows).
  // Layers with an entry in `integers` (may be null; a package's unpacked
  // codes) run with exactly that integer view of their weights.
  static absl::StatusOr<std::unique_ptr<EsbExecutor>> Create(
      const graph::Graph& graph,
      const std::map<std::string, LayerQuant>& layers,
      const EsbExecutorOptions& options = {},
      const WeightIntegers* integers = nullptr);

  // As Executor::Run.
  absl::StatusOr<std::vector<graph::Tensor>> Run(
      const std::vector<graph::Tensor>& inputs);

  // Which path each layer takes, in one line: "int8 fast path on 4 of 4
  // layers", "int8 fast path on 4 of 4 layers (K split so that every
  // chunk's accumulator stays within 2^24: 2 layers in 2 chunks, 1 in 4)",
  // "int8 fast path on 3 of 4 layers; exact f32 path on 1 layer: b8 sb4
  // signed weights do not fit int8 (layer 'fc1')", or "exact f32 path on
  // 4 of 4 layers: the CPU has no VNNI, ... (layers 'c1', 'c2', 'c3' and 1
  // more)". Layers with the same reason are listed together.
  std::string Description() const { return description_; }

  // The path of every quantized layer, by name.
  const std::map<std::string, LayerPath>& layer_paths() const { return paths_; }
  // Per fast layer name (either path): the chunks its K is split into (1:
  // not split).
  const std::map<std::string, int64_t>& k_chunks() const { return k_chunks_; }
  // Fast layers whose epilogue writes the next layers' u8/s8 input.
  int requantized_layers() const { return requantized_; }

 private:
  EsbExecutor(std::unique_ptr<Executor> executor, std::string description,
              std::map<std::string, LayerPath> paths,
              std::map<std::string, int64_t> k_chunks, int requantized)
      : executor_(std::move(executor)),
        description_(std::move(description)),
        paths_(std::move(paths)),
        k_chunks_(std::move(k_chunks)),
        requantized_(requantized) {}

  const std::unique_ptr<Executor> executor_;
  const std::string description_;
  const std::map<std::string, LayerPath> paths_;
  const std::map<std::string, int64_t> k_chunks_;
  const int requantized_;
};

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_ESB_EXECUTOR_H_
