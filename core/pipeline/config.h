// Job configuration: defaults, validation, and the formats each layer gets.
//
// This file is the one source of the job's defaults: JobSettings' in-class
// values below. The proto's comments repeat them and esbctl's flags take
// theirs from here.
#ifndef ESB_CORE_PIPELINE_CONFIG_H_
#define ESB_CORE_PIPELINE_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/esb/format.h"
#include "esb/v1/job.pb.h"
#include "esb/v1/service.pb.h"

namespace esb::pipeline {

enum class DdaRule { kOutput, kMse, kGaussian, kMinMax };
enum class Method { kEsb, kUniform, kPot };

// A JobConfig with every default applied and every field checked.
struct JobSettings {
  int weight_bits = 4;
  int weight_sb = 2;
  bool sb_auto = false;
  int max_sb = 3;  // Default: weight_bits - 1.
  int act_bits = 4;
  int act_sb = 2;
  bool act_sb_set = false;  // Given in the config: sb auto keeps it.
  bool per_channel = true;
  DdaRule dda = DdaRule::kOutput;
  Method method = Method::kEsb;
  int edge_bits = 8;  // Common practice for first and last layers.
  bool all_layers = false;
  int calib_count = 512;
  static constexpr int kMaxCalibCount = 1000000;
  uint64_t seed = 0;
  std::vector<float> mean;
  std::vector<float> std;
  std::map<std::string, esb::v1::LayerOverride> overrides;

  // "W4A4 sb2 esb dda=output per-channel edges=8".
  std::string Summary() const;
  // Effective settings as strings, for the report.
  std::map<std::string, std::string> AsMap() const;
};

// Applies defaults and validates; INVALID_ARGUMENT naming the field, the
// value and the valid range otherwise, and naming both fields when two
// contradict each other instead of letting one win silently: weight_sb with
// sb_auto, max_sb without it, scale_rule MINMAX with a DDA rule, edge_bits
// with all_layers, an override with no settings, two overrides of a node.
absl::StatusOr<JobSettings> ResolveConfig(const esb::v1::JobConfig& config);

// The names users type and reports print ("per-tensor", "output", "mse",
// "gaussian", "esb", "uniform", "pot", "dda", "minmax"), and back.
// INVALID_ARGUMENT listing the valid names for an unknown one.
absl::StatusOr<esb::v1::Granularity> ParseGranularity(absl::string_view name);
absl::StatusOr<esb::v1::DdaRule> ParseDdaRule(absl::string_view name);
absl::StatusOr<esb::v1::Method> ParseMethod(absl::string_view name);
absl::StatusOr<esb::v1::ScaleRule> ParseScaleRule(absl::string_view name);
// "calibrate", "fit", ...; "" for STAGE_UNSPECIFIED.
absl::string_view StageName(esb::v1::Stage stage);
// A job's state as users and metrics read it: "queued", "running",
// "succeeded", "failed", "cancelled"; "" for JOB_STATE_UNSPECIFIED.
absl::string_view JobStateName(esb::v1::JobState state);

// Weight format candidates of a layer (several with sb_auto), and the
// activation format for a signed or unsigned input, given the layer's role.
// INVALID_ARGUMENT naming the layer when no valid format results.
struct LayerPlan {
  std::vector<Format> weight_formats;  // Candidates; one unless sb auto.
  int act_bits = 4;
  int act_sb_signed = 2;
  int act_sb_unsigned = 2;
  bool act_sb_auto = false;  // sb auto picks the input sb too.
  bool edge = false;
};
absl::StatusOr<LayerPlan> PlanLayer(const JobSettings& settings,
                                    const std::string& node, bool edge);
absl::StatusOr<Format> ActivationFormat(const LayerPlan& plan, bool is_signed,
                                        const std::string& node);

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_CONFIG_H_
