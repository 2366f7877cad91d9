// `esbctl quantize`: the quantization job on this machine, no server.
#ifndef ESB_CLIENT_QUANTIZE_H_
#define ESB_CLIENT_QUANTIZE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/progress.h"
#include "core/pipeline/job.h"
#include "esb/v1/report.pb.h"

namespace esb::client {

// One progress bar per stage on stderr, replaced when the stage changes;
// nothing when quiet. Used for local jobs and for jobs watched remotely.
class StageBars : public pipeline::ProgressSink {
 public:
  explicit StageBars(bool quiet) : quiet_(quiet) {}
  ~StageBars() override;
  void OnProgress(const pipeline::ProgressEvent& e) override;
  // Ends the current bar.
  void Done();

 private:
  bool quiet_;
  std::string label_;
  std::unique_ptr<Progress> bar_;
};

// Runs the job with a progress bar per stage on stderr (unless quiet).
absl::StatusOr<pipeline::JobResult> Quantize(const pipeline::JobInputs& inputs,
                                             const esb::v1::JobConfig& config,
                                             bool quiet);

// The human summary: per-layer table, accuracy before and after, and where
// the error concentrates.
std::string QuantizeSummary(const pipeline::JobResult& result);

}  // namespace esb::client

#endif  // ESB_CLIENT_QUANTIZE_H_
