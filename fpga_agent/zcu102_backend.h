// The zcu102 board backend (backend.h): a ZCU102 under Linux.
//
//   bitstreams   FpgaManager (fpga_manager.h): LoadBitstream copies
//                <bitstream_dir>/<name> into the firmware directory and
//                loads it, then finds the accelerator's UIO device again
//                (a new design can bring a new device).
//   accelerator  Zcu102Device (zcu102_device.h) over Uio (uio.h); each
//                prepared model is an accel::ModelRunner on it, so its
//                outputs are bit-identical to runtime::EsbExecutor's.
//   power        Hwmon (hwmon.h): the INA226 rails sampled during each
//                batch give its energy (energy_source "measured"); without
//                rails the energy is accel::EnergyJoules of the batch's
//                modelled cost (energy_source "model"). Cycles are always
//                the device's CYCLES register (cycles_modelled false).
//
// One PE array: batches of all models run one at a time. The array's
// buffer region holds one model's image at a time; a batch of another
// model writes that model's image first (its ModelRunner is created
// again), so switching models costs a compile and a copy.
//
// Health: unhealthy without an accelerator, when the FPGA Manager reports
// an error state, or after a device run timed out (the device is reset;
// healthy again once a run completes, or after a bitstream load).
//
// Thread-safe. Models may outlive the backend.
#ifndef ESB_FPGA_AGENT_ZCU102_BACKEND_H_
#define ESB_FPGA_AGENT_ZCU102_BACKEND_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/runtime/executor.h"
#include "fpga_agent/backend.h"

namespace esb::agent {

struct Zcu102Options {
  std::string sysfs_root = "/sys";
  std::string dev_root = "/dev";
  // Where the kernel's firmware loader looks for images.
  std::string firmware_dir = "/lib/firmware";
  // Where LoadBitstream's names are looked up. Required.
  std::string bitstream_dir;
  // Per device run (one layer program); past it the run fails with
  // DEADLINE_EXCEEDED, the device is reset and the board is unhealthy.
  absl::Duration device_timeout = absl::Seconds(10);
  // Poll STATUS instead of waiting for the interrupt.
  bool poll = false;
  // How long the FPGA Manager may take to finish a load.
  absl::Duration load_timeout = absl::Seconds(30);
  // Power samples during a batch, this far apart (plus one at each end).
  absl::Duration power_period = absl::Milliseconds(5);
  int host_threads = 0;  // Host segments' threads (ExecutorOptions).
  runtime::MemoryBudget host_budget;  // Host segments' executor budget.
};

// INVALID_ARGUMENT without a bitstream directory; NOT_FOUND naming the
// path when there is no FPGA Manager. No accelerator yet (no bitstream
// loaded) is not an error: Status() says so and Prepare fails until a
// load brings one.
absl::StatusOr<std::unique_ptr<Backend>> MakeZcu102Backend(
    const Zcu102Options& options);

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_ZCU102_BACKEND_H_
