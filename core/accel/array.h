// The accelerator's PE array, its schedule and its cost: cycles, resources
// and power. Every figure here is modelled (computed from the array's
// description, never measured on a board) and is labelled so wherever it is
// shown.
//
// The array has `rows` x `cols` processing elements. Each PE multiplies an
// activation integer by a weight integer of at most `sb` significant bits
// with one shift-add per cycle (no multiplier), so a product takes as many
// cycles as the weight has nonzero terms in the schedule's worst case: sb.
// Columns take output channels, rows take the reduction (input channels x
// kernel positions); a layer is tiled over both, and the on-chip buffers
// hold a weight tile and an input tile. DMA moves the layer's weights,
// inputs and outputs between map1 (DDR) and the buffers at
// dma_bytes_per_cycle, overlapped with compute (double buffering), so a
// tile costs max(compute, DMA) cycles.
#ifndef ESB_CORE_ACCEL_ARRAY_H_
#define ESB_CORE_ACCEL_ARRAY_H_

#include <cstdint>
#include <string>

namespace esb::accel {

struct ArrayConfig {
  int rows = 16;                // PEs along the reduction. 1..255.
  int cols = 16;                // PEs along output channels. 1..255.
  int max_sb = 8;               // Largest sb of the weights. 1..15.
  uint32_t clock_khz = 200000;  // 200 MHz.
  int64_t weight_buffer_bytes = int64_t{256} << 10;
  int64_t input_buffer_bytes = int64_t{256} << 10;
  int64_t output_buffer_bytes = int64_t{128} << 10;
  int dma_bytes_per_cycle = 16;  // One 128-bit AXI port.
};

// What one layer (or a whole run) costs on the array, modelled.
struct Cost {
  int64_t macs = 0;        // Multiply-accumulates of the layer's math.
  int64_t shift_adds = 0;  // PE shift-adds actually issued (with padding).
  int64_t compute_cycles = 0;
  int64_t dma_bytes = 0;
  int64_t dma_cycles = 0;
  int64_t cycles = 0;  // The schedule's: tiles of max(compute, DMA).

  Cost& operator+=(const Cost& o);
};

// FPGA resources of the array, modelled (ZCU102: XCZU9EG, 274080 LUTs,
// 548160 flip-flops, 912 BRAM36, 2520 DSP48).
struct Resources {
  int64_t luts = 0;
  int64_t flip_flops = 0;
  int64_t bram36 = 0;
  int64_t dsp = 0;  // Only the epilogue's float units; the PEs use none.
  bool fits_zcu102 = false;
};
Resources EstimateResources(const ArrayConfig& config);

// Power, modelled: static power plus dynamic energy per shift-add and per
// DMA byte.
struct PowerModel {
  double static_watts = 1.2;
  double joules_per_shift_add = 1.5e-12;
  double joules_per_dma_byte = 40e-12;
};

// Energy (J) of `cost` at `config`'s clock: static power over the run's
// time plus the dynamic terms.
double EnergyJoules(const Cost& cost, const ArrayConfig& config,
                    const PowerModel& power = {});
// Seconds of `cycles` at `config`'s clock.
double Seconds(int64_t cycles, const ArrayConfig& config);

// "16x16 PEs, sb<=4, 200 MHz", for status lines.
std::string Describe(const ArrayConfig& config);

}  // namespace esb::accel

#endif  // ESB_CORE_ACCEL_ARRAY_H_
