// `esbctl quantize`: the quantization job on this machine, no server.
#ifndef ESB_CLIENT_QUANTIZE_H_
#define ESB_CLIENT_QUANTIZE_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/pipeline/job.h"
#include "esb/v1/report.pb.h"

namespace esb::client {

// Runs the job with a progress bar per stage on stderr (unless quiet).
absl::StatusOr<pipeline::JobResult> Quantize(const pipeline::JobInputs& inputs,
                                             const esb::v1::JobConfig& config,
                                             bool quiet);

// The human summary: per-layer table, accuracy before and after, and where
// the error concentrates.
std::string QuantizeSummary(const pipeline::JobResult& result);

}  // namespace esb::client

#endif  // ESB_CLIENT_QUANTIZE_H_
