#include "fpga_agent/backends.h"

#include "absl/strings/str_cat.h"
#include "fpga_agent/sim_backend.h"

namespace esb::agent {

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(
    const std::string& name, const BackendOptions& options, Env* env) {
  if (name == "sim") {
    SimBackendOptions sim;
    sim.bitstream_dir = options.bitstream_dir;
    sim.threads = options.host_threads;
    return std::make_unique<SimBackend>(env, std::move(sim));
  }
  if (name == "zcu102") {
    return absl::UnimplementedError(
        "backend 'zcu102' (FPGA Manager, UIO, hwmon) is not in this build "
        "of esb-agent; use --backend sim");
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown backend '", name, "'; the backends are sim and zcu102"));
}

}  // namespace esb::agent
