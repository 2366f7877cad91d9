// KServe v2 tensors to and from the model's tensors.
//
// A model served by esb-agent has one input, [batch, ...] FP32, and FP32
// outputs. A request sends the input as
//
//   FP32   float32 values, as they go into the network;
//   UINT8  8-bit pixels, normalized with the package's mean and std
//          (core/data/normalize.h: (p / 255 - mean[c]) / std[c], channel c
//          = dim 1 of a rank >= 3 input, one channel otherwise);
//
// either typed, in InferInputTensor.contents (fp32_contents for FP32,
// uint_contents for UINT8), or as bytes in the request's
// raw_input_contents (little-endian float32, or one byte a pixel). The
// response carries every output (or those the request's `outputs` list
// names, in that order) as FP32 [batch, ...], in raw_output_contents when
// the request sent raw inputs, else in each output's contents.
//
// Every mismatch is INVALID_ARGUMENT naming the field and the expected
// value. Functions are thread-safe.
#ifndef ESB_FPGA_AGENT_INFER_CODEC_H_
#define ESB_FPGA_AGENT_INFER_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/normalize.h"
#include "core/graph/graph.h"
#include "core/package/esbm.h"
#include "inference/grpc_service.pb.h"

namespace esb::agent {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // -1 in dim 0: the batch.
};

// What a served model takes and gives.
struct ModelSignature {
  std::string model;  // The model's name, for messages.
  TensorSpec input;
  std::vector<TensorSpec> outputs;  // In the package's order.
  data::Normalization normalization;
  int max_batch = 1;
};

// The signature of a package served as `name` with batches up to
// `max_batch`: dim 0 of the input and of every output is the batch.
ModelSignature SignatureOf(const std::string& name,
                           const pipeline::PackagedModel& model, int max_batch);

// "[-1,1,28,28]".
std::string ShapeString(const std::vector<int64_t>& shape);

// A ModelInferRequest.model_version: "" is 0 (the latest); otherwise a
// positive decimal number, else INVALID_ARGUMENT.
absl::StatusOr<int64_t> ParseModelVersion(const std::string& version);

// The request's input as the model's input tensor. INVALID_ARGUMENT on: a
// number of inputs other than one, a wrong input name, a datatype other
// than FP32 or UINT8, a shape of the wrong rank or non-batch dims, a batch
// below 1 or over max_batch, both contents and raw_input_contents given, a
// raw_input_contents count other than the inputs', a value count (typed)
// or byte size (raw) that does not match the shape, or a UINT8 value over
// 255.
absl::StatusOr<graph::Tensor> DecodeInput(
    const inference::ModelInferRequest& request,
    const ModelSignature& signature);

// Indices into signature.outputs of the outputs to return, in response
// order. INVALID_ARGUMENT naming an unknown or repeated output name.
absl::StatusOr<std::vector<int>> SelectOutputs(
    const inference::ModelInferRequest& request,
    const ModelSignature& signature);

// Writes the `selected` outputs of a run into `response` (model_name,
// model_version and id are the caller's).
void EncodeOutputs(const inference::ModelInferRequest& request,
                   const ModelSignature& signature,
                   const std::vector<int>& selected,
                   const std::vector<graph::Tensor>& outputs,
                   inference::ModelInferResponse* response);

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_INFER_CODEC_H_
