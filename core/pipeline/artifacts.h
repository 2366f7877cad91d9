// The names of a job's artifacts (DESIGN.md section 5): the files the job
// writes into its output folder, and the names the job service stores,
// lists and serves them by.
#ifndef ESB_CORE_PIPELINE_ARTIFACTS_H_
#define ESB_CORE_PIPELINE_ARTIFACTS_H_

namespace esb::pipeline {

inline constexpr char kOnnxArtifact[] = "model.esb.onnx";
inline constexpr char kEsbmArtifact[] = "model.esbm";
inline constexpr char kReportArtifact[] = "report.json";
inline constexpr const char* kArtifactNames[] = {kOnnxArtifact, kEsbmArtifact,
                                                 kReportArtifact};

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_ARTIFACTS_H_
