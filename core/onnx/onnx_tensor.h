// Constant tensors read from ONNX TensorProtos during import (internal to
// core/graph).
#ifndef ESB_CORE_ONNX_ONNX_TENSOR_H_
#define ESB_CORE_ONNX_ONNX_TENSOR_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"

namespace esb::graph::internal {

// A dimension only known at run time (the batch), inside folded shape
// arithmetic.
inline constexpr int64_t kUnknownDim = std::numeric_limits<int64_t>::min();

// A constant during import: float32 data for weights, int64 for shapes and
// indices (integer and boolean ONNX types).
struct ConstValue {
  bool is_int = false;
  std::vector<int64_t> shape;
  std::vector<float> f;
  std::vector<int64_t> i;

  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Converts a TensorProto whose data is inline. `what` names it in errors.
absl::StatusOr<ConstValue> FromTensorProto(const onnx::TensorProto& tensor,
                                           const std::string& what);

// Replaces external data references of every initializer (and Constant
// node value) of `model` by the bytes they point to, read from files under
// `base_dir`. Locations must be relative paths inside base_dir.
absl::Status LoadExternalData(onnx::ModelProto& model,
                              const std::string& base_dir,
                              int64_t max_total_bytes);

}  // namespace esb::graph::internal

#endif  // ESB_CORE_ONNX_ONNX_TENSOR_H_
