// `esbctl eval` and `esbctl run`: a model on CPU, without a server.
#ifndef ESB_CLIENT_EVAL_H_
#define ESB_CLIENT_EVAL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/onnx/onnx_import.h"
#include "core/runtime/executor.h"
#include "esb/v1/report.pb.h"

namespace esb::client {

// The ESB settings of --precision esb.
struct EsbSettings {
  int bits = 4;  // Weights.
  int sb = 2;
  int act_bits = 4;  // Activations (unsigned after ReLU, else signed).
  int act_sb = 2;
  std::string calib_path;  // IDX images that fit the activation scales.
  int64_t calib_count = 512;
};

// What run and eval share: how the model runs.
struct InferenceOptions {
  int batch = 64;
  int threads = 0;  // 0: all cores.
  // Input normalization; empty: the model's metadata, else pixels / 255.
  std::string mean_csv;
  std::string std_csv;
  bool esb = false;  // --precision esb.
  EsbSettings esb_settings;
  bool quiet = false;            // No progress output.
  graph::ImportOptions import;   // Budgets of the model's import.
  runtime::MemoryBudget budget;  // Of the executor's plans.
};

struct EvalOptions {
  std::string model_path;
  std::string images_path;
  std::string labels_path;
  int64_t limit = -1;  // First N images only; -1: all.
  InferenceOptions inference;
};

// Top-1 accuracy and throughput over a labelled IDX image set.
absl::StatusOr<esb::v1::EvalReport> Evaluate(const EvalOptions& options);

struct RunOptions {
  std::string model_path;
  std::string input_path;   // .npy: float32 N x C x H x W fed as is, or
                            // uint8 images normalized like eval's.
  std::string output_path;  // .npy of the first output.
  InferenceOptions inference;
};

// Runs the model on every item of the input and writes the first output.
// Returns a one-line summary.
absl::StatusOr<std::string> RunModel(const RunOptions& options);

}  // namespace esb::client

#endif  // ESB_CLIENT_EVAL_H_
