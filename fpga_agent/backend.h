// A board backend: what esb-agent needs from the hardware it serves on.
//
//   sim     no board: outputs from the CPU ESB-int8 executor (bit-identical
//           to the accelerator model, by test), cycles and energy from the
//           accelerator's cost model (source "model").
//   zcu102  a ZCU102 under Linux: bitstreams through the FPGA Manager, the
//           accelerator through UIO (core/accel/registers.h), power from the
//           INA226 monitors through hwmon (source "measured").
//
// Backends are thread-safe.
#ifndef ESB_FPGA_AGENT_BACKEND_H_
#define ESB_FPGA_AGENT_BACKEND_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/graph/graph.h"
#include "core/package/esbm.h"

namespace esb::agent {

struct RailPower {
  std::string rail;  // hwmon label, or the device name without one.
  double watts = 0.0;
};

struct BoardState {
  std::string backend;          // "sim" or "zcu102".
  std::string bitstream;        // Name of the loaded bitstream; "" for none.
  std::string bitstream_state;  // FPGA Manager state ("operating", ...).
  std::string accelerator;      // "16x16 PEs, sb<=4, 200 MHz" when known.
  std::optional<double> temperature_c;
  std::vector<RailPower> power;  // Empty when unknown.
  bool power_measured = false;   // false: modelled or none.
  bool healthy = true;
  std::string health_detail;  // Why not healthy ("" when healthy).
};

// What one batch cost. Every field says where it comes from.
struct BatchStats {
  double compute_seconds = 0.0;  // Measured on the host (wall time).
  int64_t cycles = 0;            // Device cycles.
  bool cycles_modelled = true;
  double energy_joules = 0.0;
  std::string energy_source;  // "measured" or "model".
  int64_t operations = 0;     // 2 x MACs of the batch.
};

// A model prepared on a backend. Thread-safe.
class LoadedModel {
 public:
  virtual ~LoadedModel() = default;
  // `input` is the package's (single) graph input with dim 0 the batch,
  // at most max_batch(). Returns the graph outputs in package order.
  virtual absl::StatusOr<std::vector<graph::Tensor>> Run(
      const graph::Tensor& input, BatchStats* stats) = 0;
  virtual int max_batch() const = 0;
  // Which path runs it ("int8 fast path on 4 of 4 layers", "2 device
  // programs, 1 host segment").
  virtual std::string Description() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::string_view name() const = 0;
  // Loads the bitstream `name` (a file name in the backend's bitstream
  // directory). FAILED_PRECONDITION naming the FPGA Manager's state or
  // status on a failed load; NOT_FOUND when the file is missing. The sim
  // backend records the name and reports its modelled array.
  virtual absl::Status LoadBitstream(const std::string& name) = 0;
  // Prepares a package for serving, batches of up to `max_batch`.
  virtual absl::StatusOr<std::unique_ptr<LoadedModel>> Prepare(
      const pipeline::PackagedModel& model, int max_batch) = 0;
  virtual BoardState Status() = 0;
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_BACKEND_H_
