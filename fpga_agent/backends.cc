#include "fpga_agent/backends.h"

#include "absl/strings/str_cat.h"
#include "fpga_agent/sim_backend.h"
#include "fpga_agent/zcu102_backend.h"

namespace esb::agent {

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(
    const std::string& name, const BackendOptions& options, Env* env) {
  if (name == "sim") {
    SimBackendOptions sim;
    sim.bitstream_dir = options.bitstream_dir;
    sim.threads = options.host_threads;
    sim.budget = options.host_budget;
    return std::make_unique<SimBackend>(env, std::move(sim));
  }
  if (name == "zcu102") {
    Zcu102Options zcu102;
    zcu102.sysfs_root = options.sysfs_root;
    zcu102.dev_root = options.dev_root;
    zcu102.firmware_dir = options.firmware_dir;
    zcu102.bitstream_dir = options.bitstream_dir;
    zcu102.host_threads = options.host_threads;
    zcu102.host_budget = options.host_budget;
    absl::StatusOr<std::unique_ptr<Backend>> backend =
        MakeZcu102Backend(zcu102);
    if (!backend.ok()) {
      return absl::Status(
          backend.status().code(),
          absl::StrCat("backend zcu102: ", backend.status().message()));
    }
    return backend;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown backend '", name, "'; the backends are sim and zcu102"));
}

}  // namespace esb::agent
