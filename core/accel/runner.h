// Runs a package on an accelerator (device.h): the layers the PE array
// runs go to the device as layer programs, the others run on the host CPU
// (runtime::Executor, FP32, exactly as the CPU ESB executor runs them), so
// the outputs are bit-identical to runtime::EsbExecutor's on the same
// package.
//
// Create compiles the package (program.h) for up to `max_batch` images,
// writes the image into the device's buffer region once and keeps the host
// parts' executors. Run copies a batch in, runs each segment in order (a
// device program, or a host graph) and reads the outputs back.
//
// Thread-safe: Run may be called concurrently; device runs are serialized
// (one array), host segments run in parallel.
#ifndef ESB_CORE_ACCEL_RUNNER_H_
#define ESB_CORE_ACCEL_RUNNER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/accel/array.h"
#include "core/accel/device.h"
#include "core/graph/graph.h"
#include "core/package/esbm.h"
#include "core/runtime/executor.h"

namespace esb::accel {

struct RunnerOptions {
  int max_batch = 32;  // Images per Run. 1..4096.
  // Per device run; past it the run fails with DEADLINE_EXCEEDED.
  absl::Duration device_timeout = absl::Seconds(10);
  int host_threads = 0;               // As ExecutorOptions::threads.
  runtime::MemoryBudget host_budget;  // As ExecutorOptions::budget.
};

struct RunStats {
  int64_t device_cycles = 0;  // Sum of CYCLES over the device runs.
  int device_runs = 0;
  int host_segments = 0;
  Cost cost;  // Modelled cost of the device layers for this batch.
};

class ModelRunner {
 public:
  // INVALID_ARGUMENT naming the layer when the package cannot be compiled;
  // RESOURCE_EXHAUSTED naming the sizes when the image does not fit the
  // device's buffer region. `device` must outlive the runner, and no other
  // runner may use it at the same time (the image occupies the buffer).
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Create(
      const pipeline::PackagedModel& model, Device* device,
      const RunnerOptions& options = {});
  ~ModelRunner();

  // `inputs` as Executor::Run (one tensor per graph input, dim 0 the batch,
  // at most max_batch). INVALID_ARGUMENT on a shape mismatch, the device's
  // status on a device failure.
  absl::StatusOr<std::vector<graph::Tensor>> Run(
      const std::vector<graph::Tensor>& inputs, RunStats* stats = nullptr);

  // "3 device programs (7 layers), 2 host segments (GlobalAveragePool,
  // Softmax); image 1.2 MiB".
  std::string Description() const;
  int max_batch() const;

  struct Compiled;

 private:
  explicit ModelRunner(std::unique_ptr<Compiled> compiled, Device* device,
                       const RunnerOptions& options);
  std::unique_ptr<Compiled> compiled_;
  Device* const device_;
  const RunnerOptions options_;
  absl::Mutex device_mu_;
};

// The modelled device cost of one run of `model` at `batch` images on
// `config` (from the compiled program's descriptors; no data runs), for
// backends that do not run the device (sim). INVALID_ARGUMENT as Create.
absl::StatusOr<Cost> EstimateCost(const pipeline::PackagedModel& model,
                                  const ArrayConfig& config, int batch);

}  // namespace esb::accel

#endif  // ESB_CORE_ACCEL_RUNNER_H_
