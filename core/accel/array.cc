#include "core/accel/array.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace esb::accel {
namespace {

// XCZU9EG (ZCU102) totals.
constexpr int64_t kZcu102Luts = 274080;
constexpr int64_t kZcu102FlipFlops = 548160;
constexpr int64_t kZcu102Bram36 = 912;
constexpr int64_t kZcu102Dsp = 2520;
constexpr int64_t kBram36Bytes = 4608;  // 36 Kbit.

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

Cost& Cost::operator+=(const Cost& o) {
  macs += o.macs;
  shift_adds += o.shift_adds;
  compute_cycles += o.compute_cycles;
  dma_bytes += o.dma_bytes;
  dma_cycles += o.dma_cycles;
  cycles += o.cycles;
  return *this;
}

Resources EstimateResources(const ArrayConfig& config) {
  // A PE: an 8-bit barrel shift into a 32-bit add/subtract (about 40 LUTs),
  // the weight term decoder (4 LUTs per sb), and its accumulator and
  // operand registers. Per column an epilogue (float scale and bias: 2
  // DSPs each for the multiply and the add) and a requantizer (60 LUTs).
  // Control, DMA and the AXI interfaces: a fixed 9000 LUTs and 12000 FFs.
  Resources r;
  const int64_t pes = int64_t{config.rows} * config.cols;
  r.luts = pes * (40 + 4 * config.max_sb) + int64_t{config.cols} * 160 + 9000;
  r.flip_flops = pes * 72 + int64_t{config.cols} * 200 + 12000;
  const int64_t buffer_bytes = config.weight_buffer_bytes +
                               config.input_buffer_bytes +
                               config.output_buffer_bytes;
  r.bram36 = CeilDiv(buffer_bytes, kBram36Bytes);
  r.dsp = int64_t{config.cols} * 4;
  r.fits_zcu102 = r.luts <= kZcu102Luts && r.flip_flops <= kZcu102FlipFlops &&
                  r.bram36 <= kZcu102Bram36 && r.dsp <= kZcu102Dsp;
  return r;
}

double Seconds(int64_t cycles, const ArrayConfig& config) {
  return static_cast<double>(cycles) /
         (static_cast<double>(config.clock_khz) * 1e3);
}

double EnergyJoules(const Cost& cost, const ArrayConfig& config,
                    const PowerModel& power) {
  return power.static_watts * Seconds(cost.cycles, config) +
         power.joules_per_shift_add * static_cast<double>(cost.shift_adds) +
         power.joules_per_dma_byte * static_cast<double>(cost.dma_bytes);
}

std::string Describe(const ArrayConfig& config) {
  return absl::StrFormat("%dx%d PEs, sb<=%d, %.0f MHz", config.rows,
                         config.cols, config.max_sb,
                         static_cast<double>(config.clock_khz) / 1e3);
}

}  // namespace esb::accel
