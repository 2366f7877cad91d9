// Internal to the model runner (runner.h): a package compiled into device
// programs and host segments.
//
// Placement. A node runs on the device when the array runs its op exactly:
//   - a quantized Conv (2-D), Gemm (no trans_a) or MatMul (rank-2 input)
//     whose weight sb is within the array's and whose worst-case
//     accumulator (max input integer x the largest per-channel sum of
//     |weight integers|) fits int32;
//   - MaxPool (2-D), Add of two same-shape tensors, Relu, Clip;
//   - Flatten, Reshape and Identity of a device-resident value (no
//     descriptor: the output names the input's storage);
// and every value it touches follows the batch (dim 0 is the batch, the
// rest fixed). Everything else runs on the host, in segments of
// consecutive host nodes, each through a runtime::EsbExecutor of its
// sub-graph (with the quantized layers that stay on the host).
//
// Storage. Every device value has a region in map1 of max_batch images.
// A quantized layer's output that only quantized device layers read with
// one input format and scale (directly or through MaxPool and reshapes),
// and that is not a graph output or read by the host, is stored as their
// input grid's integers (requantized by the producing layer); the rest is
// f32.
#ifndef ESB_CORE_ACCEL_COMPILE_H_
#define ESB_CORE_ACCEL_COMPILE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/accel/array.h"
#include "core/accel/program.h"
#include "core/package/esbm.h"
#include "core/runtime/esb_executor.h"

namespace esb::accel::internal {

// Where a device value lives.
struct Region {
  uint64_t offset = 0;
  DType dtype = DType::kF32;
  int64_t image_elements = 0;  // Per image.
};

struct Segment {
  bool device = false;
  // Device: the program's offset in map1, its descriptors (with the layer
  // names, for messages), and the host values copied in before it runs and
  // read back after.
  uint64_t program_offset = 0;
  std::vector<Descriptor> layers;
  std::vector<std::string> layer_names;
  std::vector<std::string> uploads;
  std::vector<std::string> downloads;
  // Host: the sub-graph and its executor; its inputs and outputs are
  // those of `graph`.
  graph::Graph graph;
  std::unique_ptr<runtime::EsbExecutor> executor;
};

struct CompiledModel {
  std::vector<Segment> segments;
  std::map<std::string, Region> regions;               // Device values.
  std::map<std::string, std::vector<int64_t>> shapes;  // Batch-1 shapes.
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  std::string image;          // Programs and weights, written at offset 0.
  uint64_t buffer_bytes = 0;  // Image plus every region.
  int max_batch = 1;
  int device_layers = 0;
  std::vector<std::string> host_ops;  // Ops of the host nodes, in order.
};

// Compiles `model` for `config`'s array and `max_batch` images. With
// `build_executors` false the host segments get no executor (for cost
// estimates). INVALID_ARGUMENT naming the node on a graph the compiler
// cannot place.
absl::StatusOr<std::unique_ptr<CompiledModel>> Compile(
    const pipeline::PackagedModel& model, const ArrayConfig& config,
    int max_batch, const runtime::EsbExecutorOptions& host_options,
    bool build_executors);

}  // namespace esb::accel::internal

#endif  // ESB_CORE_ACCEL_COMPILE_H_
