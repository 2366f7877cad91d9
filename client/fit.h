// `esbctl fit`: DDA scale fitting of a weight tensor stored as .npy.
#ifndef ESB_CLIENT_FIT_H_
#define ESB_CLIENT_FIT_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/esb/dda.h"
#include "core/esb/format.h"
#include "esb/v1/report.pb.h"

namespace esb::client {

struct FitOptions {
  std::string path;         // A float32 .npy tensor.
  DdaOptions dda;           // Mode and search settings.
  bool per_channel = true;  // One scale per slice along `axis`, else one.
  int axis = 0;             // Output channels of ONNX Conv/Gemm weights.
};

// Reads the tensor and fits it. Errors name the file and the problem.
absl::StatusOr<esb::v1::TensorFit> FitTensorFile(const Format& format,
                                                 const FitOptions& options);

// A human-readable summary: figures, the gain over the closed form, and the
// per-channel scales (at most `max_rows` of them).
std::string FitText(const esb::v1::TensorFit& fit, int max_rows);

}  // namespace esb::client

#endif  // ESB_CLIENT_FIT_H_
