// `esbctl infer`: images through an esb-agent's KServe v2 endpoint
// (inference.GRPCInferenceService/ModelInfer), and the pieces `esbctl
// bench` shares with it: the model's input from ModelMetadata, requests
// built from a data set, outputs read back, latency percentiles.
//
// How images travel. The agent's ModelMetadata names the input and its
// shape but not the package's normalization (KServe's metadata has no
// field for it), so esbctl never guesses it:
//   - 8-bit pixels (IDX, uint8 .npy, image folders and tars) without
//     --mean/--std go as UINT8, and the agent normalizes them with the
//     package's own mean and std (fpga_agent/infer_codec.h), exactly as
//     the job's eval did;
//   - with --mean/--std they are normalized here (core/data/normalize.h)
//     and go as FP32;
//   - a float32 .npy is already normalized and goes as FP32, as is.
// Every request carries its images in raw_input_contents.
//
// Functions are thread-safe; RunInfer makes its calls one after another.
#ifndef ESB_CLIENT_AGENT_INFER_H_
#define ESB_CLIENT_AGENT_INFER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/agent_client.h"
#include "core/data/dataset.h"
#include "core/data/normalize.h"
#include "esb/v1/report.pb.h"
#include "inference/grpc_service.pb.h"

namespace esb::client {

// Nearest-rank percentiles of request round trips given in seconds.
esb::v1::LatencySummary SummarizeLatency(std::vector<double> seconds);

// A served model's image input, [-1, C, H, W] in ModelMetadata.
struct ModelInput {
  std::string model;
  std::string version;  // The served version, as the agent names it.
  std::string name;     // The input tensor's name.
  data::ImageGeometry geometry;
  std::string output;  // The first output's name.
};

// FAILED_PRECONDITION naming the model and its input when it is not one
// NCHW image input with a free batch, or there is no output.
absl::StatusOr<ModelInput> ModelInputOf(
    const inference::ModelMetadataResponse& metadata);

// The images of an --input, read for one model input.
class InferInputs {
 public:
  enum class Wire { kUint8, kFp32 };

  // Opens `path` (data::Dataset: IDX, .npy, image folder or tar) for
  // `input`; `normalization` is --mean/--std (empty when not given).
  // `labels_path` and `limit` as data::DatasetOptions. The data set's
  // errors (NOT_FOUND, INVALID_ARGUMENT naming the file) otherwise.
  static absl::StatusOr<std::unique_ptr<InferInputs>> Open(
      const std::string& path, const std::string& labels_path, int64_t limit,
      const ModelInput& input, const data::Normalization& normalization);

  const data::Dataset& dataset() const { return *dataset_; }
  int64_t count() const { return dataset_->count(); }
  Wire wire() const { return wire_; }
  // "UINT8" or "FP32".
  const char* datatype() const {
    return wire_ == Wire::kUint8 ? "UINT8" : "FP32";
  }
  // Where the normalization happens, for reports.
  const std::string& normalization() const { return normalization_; }

  // A ModelInfer request for images [start, start + n), in range.
  absl::StatusOr<inference::ModelInferRequest> Request(int64_t start,
                                                       int64_t n) const;

 private:
  InferInputs(std::unique_ptr<data::Dataset> dataset, ModelInput input,
              Wire wire, std::string normalization)
      : dataset_(std::move(dataset)),
        input_(std::move(input)),
        wire_(wire),
        normalization_(std::move(normalization)) {}

  std::unique_ptr<data::Dataset> dataset_;
  ModelInput input_;
  Wire wire_;
  std::string normalization_;
};

// A request of `n` images of `input` filled with uniform random floats in
// [0, 1) from `seed` (bench without --input), FP32 in raw_input_contents.
inference::ModelInferRequest RandomRequest(const ModelInput& input, int64_t n,
                                           uint64_t seed);

// The first output of a reply to a request of `n` images, n x per_image
// floats, from raw_output_contents or the typed contents. INVALID_ARGUMENT
// (naming what is wrong) when it is missing, not FP32, or not n images.
absl::StatusOr<std::vector<float>> FirstOutput(
    const inference::ModelInferResponse& response, int64_t n,
    int64_t* per_image);

// Indices of the `k` largest of `values`, largest first; ties go to the
// lower index (as argmax in core/eval). k is clamped to values.size().
std::vector<int32_t> TopK(absl::Span<const float> values, int k);

struct InferOptions {
  std::string model;
  std::string input_path;
  std::string labels_path;
  int64_t limit = -1;  // First N images; -1: all.
  // Images per request; 0: kDefaultBatch, lowered to the model's max batch
  // on the agent when that is smaller.
  int batch = 0;
  int top = 1;                        // Classes kept per image.
  bool raw = false;                   // Keep every output value of each image.
  data::Normalization normalization;  // --mean/--std; empty: not given.
};

inline constexpr int kDefaultInferBatch = 32;

// Checks the flags' values: a model name, batch in 1..65536 or 0, top in
// 1..1000, limit -1 or >= 1, an --input. INVALID_ARGUMENT naming the flag.
absl::Status CheckInferOptions(const InferOptions& options);

// That `path` is a data set (Dataset::Detect): its NOT_FOUND or
// INVALID_ARGUMENT, the message starting with "--input: ".
absl::Status CheckInputPath(const std::string& path);

// Checks as the two above, then runs every image of options.input_path through
// `agent` in requests of the batch, and gathers predictions, top-1 (with
// labels), throughput and request latency. `max_batch` is the model's on the
// agent (0: unknown); an explicit batch over it is INVALID_ARGUMENT naming
// both.
absl::StatusOr<esb::v1::InferReport> RunInfer(AgentClient& agent,
                                              const InferOptions& options,
                                              int64_t max_batch);

// The text `esbctl infer` prints: predictions (the first `lines`, then a
// count) or the accuracy, then throughput and latency.
std::string InferText(const esb::v1::InferReport& report, int lines = 10);

}  // namespace esb::client

#endif  // ESB_CLIENT_AGENT_INFER_H_
