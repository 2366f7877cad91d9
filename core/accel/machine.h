// The accelerator model: a bit-exact integer model of the ESB PE array that
// executes a layer program (program.h) in a buffer region, exactly as the
// device behind the register interface does. The device emulator of the
// tests and ModelDevice run it; nothing else computes the device's results.
#ifndef ESB_CORE_ACCEL_MACHINE_H_
#define ESB_CORE_ACCEL_MACHINE_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "core/accel/array.h"
#include "core/accel/registers.h"

namespace esb::accel {

struct MachineRun {
  DeviceError error = DeviceError::kNone;  // kNone when the run completed.
  int32_t layers_done = 0;
  Cost cost;                    // Modelled; cost.cycles goes to CYCLES.
  std::vector<Cost> per_layer;  // One per layer done.
};

// Validates the program at `program_offset` of `buffer` against the buffer
// and `config` (every offset, size and field; an error code, never an
// out-of-bounds access), then runs its layers in order, reading and
// writing only inside `buffer`. A layer that fails validation stops the run
// with its error; the layers before it have run.
MachineRun Execute(absl::Span<uint8_t> buffer, uint64_t program_offset,
                   const ArrayConfig& config);

}  // namespace esb::accel

#endif  // ESB_CORE_ACCEL_MACHINE_H_
