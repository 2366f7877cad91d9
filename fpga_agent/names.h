// Names that come from requests (models, bitstreams) and become path
// components: checked here, never used unchecked.
#ifndef ESB_FPGA_AGENT_NAMES_H_
#define ESB_FPGA_AGENT_NAMES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace esb::agent {

// OK when `name` is 1..64 letters, digits, '-', '_' or '.', and neither "."
// nor ".."; otherwise INVALID_ARGUMENT naming the rule it breaks. `what`
// names the thing in the message ("model name", "bitstream name").
absl::Status ValidateName(absl::string_view name,
                          absl::string_view what = "model name");

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_NAMES_H_
