// The one place that turns a backend's name (--backend) into a Backend.
#ifndef ESB_FPGA_AGENT_BACKENDS_H_
#define ESB_FPGA_AGENT_BACKENDS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/env/env.h"
#include "core/runtime/executor.h"
#include "fpga_agent/backend.h"

namespace esb::agent {

// Everything a backend may need; each takes what applies to it.
struct BackendOptions {
  // Bitstreams that LoadBitstream names live here ("": none can load).
  std::string bitstream_dir;
  // zcu102: the roots every Linux interface hangs off, so tests run it
  // against a fake tree.
  std::string sysfs_root = "/sys";
  std::string dev_root = "/dev";
  std::string firmware_dir = "/lib/firmware";
  int host_threads = 0;  // CPU threads of a model's host parts (0: all).
  runtime::MemoryBudget host_budget;  // Of each model's host executor.
};

// "sim" or "zcu102". INVALID_ARGUMENT naming the known backends for any
// other name; the backend's own error when it cannot start. `env` is not
// owned and must outlive the backend.
absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(
    const std::string& name, const BackendOptions& options, Env* env);

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_BACKENDS_H_
