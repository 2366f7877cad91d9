// Constant tensors read from ONNX TensorProtos during import (internal to
// core/graph).
#ifndef ESB_CORE_ONNX_ONNX_TENSOR_H_
#define ESB_CORE_ONNX_ONNX_TENSOR_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/graph/checked.h"
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

  // The number of elements; -1 when the shape is negative or its product
  // overflows (FromTensorProto and the folds refuse such shapes).
  int64_t size() const { return CheckedProduct(shape).value_or(-1); }
};

// Converts a TensorProto whose data is inline. `what` names it in errors.
// INVALID_ARGUMENT on negative dims or a value count that disagrees with the
// shape; RESOURCE_EXHAUSTED when the shape holds more than `max_elements`
// (checked before any data is converted).
absl::StatusOr<ConstValue> FromTensorProto(const onnx::TensorProto& tensor,
                                           const std::string& what,
                                           int64_t max_elements);

// OK when `shape` (non-negative dims) holds at most `max_elements` elements;
// else RESOURCE_EXHAUSTED "<what>: <shape> of <n> elements exceeds the limit
// of <max> elements per tensor (<field>)". A product past int64 is reported as
// such.
absl::Status CheckElements(const std::string& what,
                           const std::vector<int64_t>& shape,
                           int64_t max_elements, absl::string_view field);

// Replaces external data references of every initializer (and Constant
// node value) of `model` by the bytes they point to, read from files under
// `base_dir`. Locations must be relative paths inside base_dir.
absl::Status LoadExternalData(onnx::ModelProto& model,
                              const std::string& base_dir,
                              int64_t max_total_bytes);

}  // namespace esb::graph::internal

#endif  // ESB_CORE_ONNX_ONNX_TENSOR_H_
