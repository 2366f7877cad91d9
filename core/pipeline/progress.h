// Progress and cancellation of long pipeline work.
#ifndef ESB_CORE_PIPELINE_PROGRESS_H_
#define ESB_CORE_PIPELINE_PROGRESS_H_

#include <cstdint>
#include <string>

#include "esb/v1/job.pb.h"

namespace esb::pipeline {

struct ProgressEvent {
  esb::v1::Stage stage = esb::v1::STAGE_UNSPECIFIED;
  int64_t step = 0;     // Steps done in the stage.
  int64_t total = 0;    // Steps in the stage.
  std::string message;  // e.g. the layer just fitted.
};

// Receives events from the thread running the job. Cancelled() is polled
// between steps; once it returns true the job stops with CANCELLED at the
// next check.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void OnProgress(const ProgressEvent& event) = 0;
  virtual bool Cancelled() { return false; }
};

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_PROGRESS_H_
