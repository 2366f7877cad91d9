// The layer program: what the register interface carries to the PE array
// (DESIGN.md section 7.1). Its byte layout is defined here, once, for the
// compiler (runner.cc), the accelerator model (machine.cc), the device
// emulator and the hardware design.
//
// Everything lives in map1, the accelerator's buffer region; every offset
// below is a byte offset from the start of map1, and every field is
// little-endian.
//
// Header (kHeaderBytes = 64) at the PROGRAM register's offset, 8-aligned:
//   0  u32 magic        kProgramMagic ("ESBP")
//   4  u32 version      kProgramVersion
//   8  u32 layer_count  1..kMaxLayers
//   12 u32 batch        images of this run, 1..max_batch (the host writes it
//                       before START)
//   16 u32 max_batch    images the buffers have room for
//   20 u32 descriptor_bytes  kDescriptorBytes
//   24..63 reserved, zero
// then layer_count descriptors of kDescriptorBytes each:
//   0   u32 op            LayerKind
//   4   u32 in_c    8 in_h    12 in_w     per image (NCHW)
//   16  u32 out_c   20 out_h  24 out_w
//   28  u32 kernel_h 32 kernel_w  36 stride_h  40 stride_w
//   44  u32 pad_top  48 pad_left  52 dilation_h 56 dilation_w
//   60  u32 group
//   64  u32 weight_format  68 input_format  72 output_format  (PackFormat)
//   76  u32 input_dtype    80 output_dtype  84 input2_dtype   (DType)
//   88  u32 activation     (0 none, 1 Relu, 2 Clip)
//   92  f32 act_lo   96 f32 act_hi
//   100 f32 input_alpha    104 f32 output_alpha
//   108 u32 reserved
//   112 u64 weights_offset  120 u64 weights_bytes
//   128 u64 scales_offset   136 u64 bias_offset
//   144 u64 input_offset    152 u64 input2_offset   160 u64 output_offset
//   168..191 reserved, zero
//
// Buffers hold max_batch images back to back, each image the tensor's
// per-image elements in NCHW order, of its DType.
//
// Layer kinds:
//   kConv     a quantized Conv, Gemm or MatMul (Gemm and MatMul as a 1x1
//             convolution over [K,1,1] -> [M,1,1]). Weights: packed codes of
//             weight_format (core/esb/codes.h), layout [out_c][in_c/group]
//             [kernel_h][kernel_w]; scales: f32 s[m] per output channel;
//             bias: f32 per output channel. Input of f32 is rounded to
//             input_format (input_alpha) as it is read; an integer input
//             already is that grid's integer view. Each product is at most
//             sb shift-adds of the input integer, accumulated in int32;
//             y = act(float(acc) * s[m] + bias[m]); an integer output is y
//             rounded onto output_format (output_alpha), the next layer's
//             input grid. Padding reads integer 0.
//   kMaxPool  max over the window (pads and positions past the input are
//             skipped); input and output of one DType (integers keep their
//             grid: rounding is monotonic).
//   kAdd      f32 input + input2, elementwise, same shape.
//   kRelu     f32: y = x > 0 ? x : x * 0.
//   kClip     f32: min(max(x, act_lo), act_hi).
//
// Readers validate every field, offset and size against map1 before the
// layer touches memory: a bad program is an error code, never an
// out-of-bounds access.
#ifndef ESB_CORE_ACCEL_PROGRAM_H_
#define ESB_CORE_ACCEL_PROGRAM_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "core/accel/registers.h"
#include "core/esb/format.h"

namespace esb::accel {

inline constexpr uint32_t kProgramMagic = 0x50425345;  // "ESBP".
inline constexpr uint32_t kProgramVersion = 1;
inline constexpr uint32_t kHeaderBytes = 64;
inline constexpr uint32_t kDescriptorBytes = 192;
inline constexpr uint32_t kMaxLayers = 65536;
inline constexpr uint32_t kMaxDim = 1u << 16;  // Any one dim or attribute.
inline constexpr uint32_t kMaxBatch = 4096;

enum class LayerKind : uint32_t {
  kConv = 1,
  kMaxPool = 2,
  kAdd = 3,
  kRelu = 4,
  kClip = 5,
};

enum class DType : uint32_t {
  kF32 = 0,
  kS8 = 1,   // Integer view in int8.
  kU8 = 2,   // Integer view in uint8.
  kS32 = 3,  // Integer view in int32 (formats that do not fit 8 bits).
};
int DTypeBytes(DType t);  // 0 for an unknown value.
bool IsInteger(DType t);

// bits | sb << 8 | signed << 16.
uint32_t PackFormat(const Format& f);
// Nullopt-like: false when the value is not a valid format.
bool UnpackFormat(uint32_t packed, Format* f);

struct Header {
  uint32_t magic = kProgramMagic;
  uint32_t version = kProgramVersion;
  uint32_t layer_count = 0;
  uint32_t batch = 1;
  uint32_t max_batch = 1;
};

struct Descriptor {
  LayerKind op = LayerKind::kConv;
  uint32_t in_c = 0, in_h = 0, in_w = 0;
  uint32_t out_c = 0, out_h = 0, out_w = 0;
  uint32_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  uint32_t pad_top = 0, pad_left = 0, dilation_h = 1, dilation_w = 1;
  uint32_t group = 1;
  uint32_t weight_format = 0, input_format = 0, output_format = 0;
  DType input_dtype = DType::kF32, output_dtype = DType::kF32,
        input2_dtype = DType::kF32;
  uint32_t activation = 0;
  float act_lo = 0.0f, act_hi = 0.0f;
  float input_alpha = 0.0f, output_alpha = 0.0f;
  uint64_t weights_offset = 0, weights_bytes = 0;
  uint64_t scales_offset = 0, bias_offset = 0;
  uint64_t input_offset = 0, input2_offset = 0, output_offset = 0;

  int64_t InputImageBytes() const;  // in_c*in_h*in_w * DTypeBytes(input).
  int64_t OutputImageBytes() const;
  int64_t MacsPerImage() const;  // kConv only; 0 otherwise.
};

// Serialization of the two records into `out` (kHeaderBytes or
// kDescriptorBytes bytes).
void WriteHeader(const Header& h, uint8_t* out);
void WriteDescriptor(const Descriptor& d, uint8_t* out);

// A program read and checked against its buffer region and the array.
struct CheckedProgram {
  DeviceError error = DeviceError::kNone;
  int failed_layer = -1;  // With error: the layer that failed, or -1.
  Header header;
  std::vector<Descriptor> layers;  // The layers before failed_layer.
};

// Reads the program at `offset`; see the file comment for what is checked.
// `max_sb` is the array's (CAPS).
CheckedProgram ReadProgram(absl::Span<const uint8_t> buffer, uint64_t offset,
                           int max_sb);

// Little-endian field access (map1 is little-endian on every side).
inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t LoadU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void StoreU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void StoreU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace esb::accel

#endif  // ESB_CORE_ACCEL_PROGRAM_H_
