// --override: per-layer precision on the command line.
#ifndef ESB_CLIENT_OVERRIDES_H_
#define ESB_CLIENT_OVERRIDES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "esb/v1/job.pb.h"

namespace esb::client {

// Appends to `config` one LayerOverride per entry of `text`, such as
// 'conv1:bits=8:sb=7;fc:act_bits=8': entries separated by ';' (empty ones
// skipped), each a node name and at least one key=integer, keys among bits,
// sb, act_bits and act_sb. INVALID_ARGUMENT quoting the entry for an entry
// without a node or without keys, a key that is unknown, repeated or not
// key=integer, and a node named by two entries; `config` is then left
// partly filled. Ranges are checked with the rest of the config.
absl::Status ParseOverrides(absl::string_view text, esb::v1::JobConfig* config);

}  // namespace esb::client

#endif  // ESB_CLIENT_OVERRIDES_H_
