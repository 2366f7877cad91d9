// What the model runner (runner.h) needs from an accelerator: its buffer
// region and a way to run one program in it. The zcu102 backend implements
// it over UIO registers (fpga_agent/), ModelDevice (model_device.h) runs the
// accelerator model in process.
#ifndef ESB_CORE_ACCEL_DEVICE_H_
#define ESB_CORE_ACCEL_DEVICE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/accel/array.h"

namespace esb::accel {

struct DeviceRun {
  int64_t cycles = 0;       // CYCLES after the run (modelled by the model).
  int32_t layers_done = 0;  // LAYERS_DONE after the run.
};

// Not thread-safe: callers serialize Run (ModelRunner does).
class Device {
 public:
  virtual ~Device() = default;

  // The array's shape and clock, as CAPS and CLOCK_KHZ give them.
  virtual ArrayConfig config() const = 0;
  // map1, the buffer region both sides see. Writes by the host before Run
  // are seen by the device; writes by the device are seen after Run.
  virtual absl::Span<uint8_t> buffer() = 0;
  // Runs the program at `program_offset` of the buffer and waits for done
  // or error, at most `timeout`. DEADLINE_EXCEEDED when the device never
  // finishes; INTERNAL naming the device's error code
  // (DeviceErrorName) when the run ends in error.
  virtual absl::StatusOr<DeviceRun> Run(uint64_t program_offset,
                                        absl::Duration timeout) = 0;
};

}  // namespace esb::accel

#endif  // ESB_CORE_ACCEL_DEVICE_H_
