// model.esbm: the board package of an ESB-quantized model (DESIGN.md
// section 5; schema and framing in proto/esb/v1/esbm.proto).
//
// BuildPackage turns a graph and its quantized layers into a Package; the
// board agent runs what it receives through ParsePackage and UnpackPackage,
// which validate everything, so a corrupt or hostile package gives an error
// naming the problem, never a crash.
//
// A quantized layer (Conv, Gemm, MatMul with a LayerQuant) carries, instead
// of its float weights:
//   - weight_format, weight_alpha (one per output channel, or one),
//     weight_channel_axis (Conv 0; Gemm 0 when trans_b, else 1; MatMul 1)
//     and weight_shape;
//   - weight_codes: for each weight in row-major order, the code of its
//     integer view wi (from QuantizeWeights), packed as core/esb/codes.h
//     defines (weight_format.bits bits per code, LSB first);
//   - input_format and input_alpha;
//   - bias: float [M], Conv B, Gemm beta * C with C a scalar or one value
//     per output column, zeros when absent (and for MatMul). Since beta is
//     folded into bias, a quantized Gemm's package beta is 1.
// Its inputs stay those of the graph node (input, weight name, bias name).
// Float constants read by other layers are in Package.constants.
//
// Functions are thread-safe.
#ifndef ESB_CORE_PACKAGE_ESBM_H_
#define ESB_CORE_PACKAGE_ESBM_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/normalize.h"
#include "core/esb/layer_quant.h"
#include "core/graph/graph.h"
#include "esb/v1/esbm.pb.h"

namespace esb::pipeline {

// Package.version and the frame's version: the only ones readers accept.
inline constexpr uint32_t kPackageVersion = 2;
// "ESBM" + uint32 version + SHA-256.
inline constexpr size_t kPackageHeaderBytes = 4 + 4 + 32;

// The package of `graph` with `layers` (quantized layers by node name).
// INVALID_ARGUMENT naming the layer when an entry names no Conv, Gemm or
// MatMul node, when its weights or bias are not constants, its scales are
// not finite and positive or do not match its output channels, its bias
// has the wrong size, or (Gemm) C is neither a scalar nor one value per
// output column; naming the constant when a constant's data does not match
// its shape.
absl::StatusOr<esb::v1::Package> BuildPackage(
    const graph::Graph& graph, const std::map<std::string, LayerQuant>& layers,
    const data::Normalization& normalization, const std::string& model_name);

// The framed bytes of model.esbm: "ESBM", version (uint32 little-endian),
// SHA-256 of the payload, payload (the Package serialized
// deterministically). The same package always gives the same bytes.
// Packages must serialize to less than 2 GiB (a protobuf limit).
std::string SerializePackage(const esb::v1::Package& package);

// Reads framed bytes. INVALID_ARGUMENT naming the problem: fewer bytes than
// the header ("truncated"), a wrong magic, an unknown version, "checksum
// mismatch: the package is corrupt", or a payload that does not parse.
absl::StatusOr<esb::v1::Package> ParsePackage(absl::string_view bytes);

// What a package holds, in the form the executors take.
struct PackagedModel {
  // Quantized layers carry their weights' integer view as the codes give
  // it (weight_integers, for EsbExecutor::Create), so an ESB executor runs
  // exactly the package's weights; their float weights are also constants
  // holding
  // weight_alpha[m] * level, and their bias as a constant [M] (for Conv and
  // Gemm always present, named by the layer's inputs, or
  // "<layer>/weight" and "<layer>/bias" when those names are missing or
  // taken by another tensor); quantized Gemms have beta 1. Output shapes
  // come from shape inference (dim 0 is kBatch when it follows the batch).
  // opset is 13 (the IR's semantics no longer depend on it) and metadata is
  // empty.
  graph::Graph graph;
  std::map<std::string, LayerQuant> layers;
  WeightIntegers weight_integers;  // By layer name.
  data::Normalization normalization;
};

// Rebuilds a graph from a package. INVALID_ARGUMENT naming the layer and
// field on anything inconsistent: an unknown version, op or activation,
// duplicate layer names, an invalid format, alphas not finite and positive
// or not one per output channel, a channel axis that is not the op's,
// codes of the wrong length, a bias of the wrong size, a nonzero bias on a
// MatMul, constants whose data does not match their shape, a normalization
// with mismatched or non-positive values, or a graph whose shapes do not
// work out (shapes.h, run with batch 1).
struct UnpackOptions {
  // Bytes unpacking may allocate for weights (their integer view and
  // floats), biases and constants together. A package's codes take 2 to 8
  // bits a weight and unpack to 8 bytes a weight, so this, not the
  // package's size, bounds the memory a hostile package can ask for.
  int64_t max_unpacked_bytes = int64_t{4} << 30;
};

// RESOURCE_EXHAUSTED naming the layer or constant when unpacking would
// allocate more than options.max_unpacked_bytes.
absl::StatusOr<PackagedModel> UnpackPackage(const esb::v1::Package& package,
                                            const UnpackOptions& options = {});

}  // namespace esb::pipeline

#endif  // ESB_CORE_PACKAGE_ESBM_H_
