// The quantization job: what a worker runs and `esbctl quantize` runs
// locally. Stages: load (import, passes), calibrate (activation histograms
// over the calibration images), fit (fit.h), export (model.esb.onnx,
// model.esbm, report.json), eval (FP32 and exact ESB top-1 on labelled
// images, when given).
//
// Determinism: the same model, data, config and seed give byte-identical
// model.esb.onnx and model.esbm whatever the thread count, and the same
// report.json but for its timings.
#ifndef ESB_CORE_PIPELINE_JOB_H_
#define ESB_CORE_PIPELINE_JOB_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/pipeline/progress.h"
#include "esb/v1/job.pb.h"
#include "esb/v1/report.pb.h"

namespace esb::pipeline {

struct JobInputs {
  std::string model_path;    // FP32 ONNX model.
  std::string calib_images;  // IDX images.
  std::string eval_images;   // Optional IDX images ...
  std::string eval_labels;   // ... and labels.
  int64_t eval_limit = -1;   // First N eval images; -1: all.
  std::string output_dir;    // Created if missing.
  int threads = 0;           // 0: every core.
};

struct JobResult {
  esb::v1::QuantReport report;
  std::string onnx_path;
  std::string esbm_path;
  std::string report_path;
};

// Runs the job. INVALID_ARGUMENT for bad configs, models or data (naming
// the field, node or file), CANCELLED when `progress` asks, and the
// filesystem's error when artifacts cannot be written. `progress` may be
// null.
absl::StatusOr<JobResult> RunJob(const JobInputs& inputs,
                                 const esb::v1::JobConfig& config,
                                 ProgressSink* progress);

// Writes `bytes` to `path` through a temporary file that is fsynced and
// renamed, so readers never see a partial artifact.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& bytes);

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_JOB_H_
