// Job configuration: defaults, validation, and the formats each layer gets.
#ifndef ESB_CORE_PIPELINE_CONFIG_H_
#define ESB_CORE_PIPELINE_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/esb/format.h"
#include "esb/v1/job.pb.h"

namespace esb::pipeline {

enum class DdaRule { kOutput, kMse, kGaussian, kMinMax };
enum class Method { kEsb, kUniform, kPot };

// A JobConfig with every default applied and every field checked.
struct JobSettings {
  int weight_bits = 4;
  int weight_sb = 2;
  bool sb_auto = false;
  int max_sb = 3;
  int act_bits = 4;
  int act_sb = 2;
  bool act_sb_set = false;  // Given in the config: sb auto keeps it.
  bool per_channel = true;
  DdaRule dda = DdaRule::kOutput;
  Method method = Method::kEsb;
  int edge_bits = 8;
  bool all_layers = false;
  int calib_count = 512;
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
// value and the valid range otherwise.
absl::StatusOr<JobSettings> ResolveConfig(const esb::v1::JobConfig& config);

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
