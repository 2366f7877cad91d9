// The quantization job: what a worker runs and `esbctl quantize` runs
// locally. Stages, each its own function in job.cc:
//   load       read the model (through the Env), import, run the passes,
//              resolve the normalization;
//   calibrate  activation histograms over the calibration images (only
//              the images the seed picks are decoded);
//   fit        layer-by-layer DDA (fit.h);
//   export     model.esb.onnx and model.esbm, each written atomically;
//   eval       when eval images are given: FP32 top-1 of the imported
//              model, and ESB top-1 of model.esbm as written (read back,
//              unpacked, run with its integer codes), so the figure a user
//              sees is that of what they deploy;
// then report.json.
//
// Determinism: the same model, data, config and seed give byte-identical
// model.esb.onnx and model.esbm whatever the thread count, and the same
// report.json but for its timings.
//
// Failure: no artifact is ever partial (a failed write leaves the path as
// it was, and the status names the failing step and path).
#ifndef ESB_CORE_PIPELINE_JOB_H_
#define ESB_CORE_PIPELINE_JOB_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/env/env.h"
#include "core/onnx/onnx_import.h"
#include "core/pipeline/progress.h"
#include "core/runtime/executor.h"
#include "esb/v1/job.pb.h"
#include "esb/v1/report.pb.h"

namespace esb::pipeline {

struct JobInputs {
  std::string model_path;  // FP32 ONNX model.
  std::string model_name;  // Report name; empty: the model file's stem.
  // Data sets as data/dataset.h reads them: IDX, .npy, a folder of PNG or
  // JPEG images, or a tar of such a folder.
  std::string calib_images;
  // Optional eval images, with labels from `eval_labels` (IDX labels or
  // text, one integer per line) or, left empty, from the class subfolders
  // of an image folder or tar.
  std::string eval_images;
  std::string eval_labels;
  int64_t eval_limit = -1;  // First N eval images; -1: all.
  std::string output_dir;   // Created if missing.
  int threads = 0;          // 0: every CPU this process may use.
  // The model file, the artifacts and the package read back go through
  // this Env (not owned; never null).
  Env* env = Env::Default();
  // Budgets of the import (model size, tensor sizes).
  graph::ImportOptions import;
  // Memory budget of every executor the job runs the whole model on
  // (calibration, FP32 and ESB evaluation).
  runtime::MemoryBudget budget;
};

struct JobResult {
  esb::v1::QuantReport report;
  std::string onnx_path;
  std::string esbm_path;
  std::string report_path;
};

// Runs the job. INVALID_ARGUMENT for bad configs, models or data (naming
// the field, node or file), CANCELLED when `progress` asks, and the Env's
// error (naming the step and path) when artifacts cannot be written.
// `progress` may be null.
absl::StatusOr<JobResult> RunJob(const JobInputs& inputs,
                                 const esb::v1::JobConfig& config,
                                 ProgressSink* progress);

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_JOB_H_
