#include "core/accel/model_device.h"

#include "absl/strings/str_cat.h"
#include "core/accel/machine.h"

namespace esb::accel {

absl::StatusOr<DeviceRun> ModelDevice::Run(uint64_t program_offset,
                                           absl::Duration timeout) {
  const MachineRun run =
      Execute(absl::MakeSpan(buffer_), program_offset, config_);
  if (run.error != DeviceError::kNone) {
    const auto code = static_cast<uint8_t>(run.error);
    return absl::InternalError(absl::StrCat("accelerator error ", code, " (",
                                            DeviceErrorName(code), ") after ",
                                            run.layers_done, " layers"));
  }
  return DeviceRun{run.cost.cycles, run.layers_done};
}

}  // namespace esb::accel
