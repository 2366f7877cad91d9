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
#include "core/accel/program.h"
#include "core/accel/registers.h"

namespace esb::accel {

struct MachineRun {
  DeviceError error = DeviceError::kNone;  // kNone when the run completed.
  int32_t layers_done = 0;
  Cost cost;                    // Modelled; cost.cycles goes to CYCLES.
  std::vector<Cost> per_layer;  // One per layer done.
};

// Validates the whole program at `program_offset` of `buffer` against the
// buffer and `config` (program.h: every offset, size and field; an error
// code, never an out-of-bounds access); a program that fails runs no layer.
// Then runs its layers in order, reading and writing only inside `buffer`.
MachineRun Execute(absl::Span<uint8_t> buffer, uint64_t program_offset,
                   const ArrayConfig& config);

// The modelled cost of one layer over `batch` images on `config`'s array
// (array.h describes the schedule). The descriptor must have passed
// ReadProgram.
Cost LayerCost(const Descriptor& d, int batch, const ArrayConfig& config);

}  // namespace esb::accel

#endif  // ESB_CORE_ACCEL_MACHINE_H_
