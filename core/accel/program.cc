#include "core/accel/program.h"

#include <bit>
#include <cmath>
#include <cstddef>

#include "core/esb/codes.h"

namespace esb::accel {

static_assert(std::endian::native == std::endian::little,
              "map1 is little-endian; a big-endian host needs byte swaps");

namespace {

// Work per layer (MACs or elements times batch) past which a descriptor is
// refused: a hostile program cannot make the array (or its model) run for
// days.
constexpr uint64_t kMaxLayerWork = uint64_t{1} << 40;

bool Mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

bool DimOk(uint32_t v) { return v >= 1 && v <= kMaxDim; }

bool FiniteAlpha(float a) { return std::isfinite(a) && a > 0.0f; }

// True when `t` can hold the integer view of `f`.
bool HoldsFormat(DType t, const Format& f) {
  switch (t) {
    case DType::kS8:
      return f.is_signed() && f.max_integer() <= 127;
    case DType::kU8:
      return !f.is_signed() && f.max_integer() <= 255;
    case DType::kS32:
      return true;
    case DType::kF32:
      return false;
  }
  return false;
}

bool KnownDType(DType t) { return DTypeBytes(t) > 0; }

// [offset, offset + bytes) inside a buffer of `size`, 4-aligned.
bool RangeOk(uint64_t offset, uint64_t bytes, uint64_t size) {
  return offset % 4 == 0 && offset <= size && bytes <= size - offset;
}

Descriptor ParseDescriptor(const uint8_t* p) {
  Descriptor d;
  d.op = static_cast<LayerKind>(LoadU32(p + 0));
  d.in_c = LoadU32(p + 4);
  d.in_h = LoadU32(p + 8);
  d.in_w = LoadU32(p + 12);
  d.out_c = LoadU32(p + 16);
  d.out_h = LoadU32(p + 20);
  d.out_w = LoadU32(p + 24);
  d.kernel_h = LoadU32(p + 28);
  d.kernel_w = LoadU32(p + 32);
  d.stride_h = LoadU32(p + 36);
  d.stride_w = LoadU32(p + 40);
  d.pad_top = LoadU32(p + 44);
  d.pad_left = LoadU32(p + 48);
  d.dilation_h = LoadU32(p + 52);
  d.dilation_w = LoadU32(p + 56);
  d.group = LoadU32(p + 60);
  d.weight_format = LoadU32(p + 64);
  d.input_format = LoadU32(p + 68);
  d.output_format = LoadU32(p + 72);
  d.input_dtype = static_cast<DType>(LoadU32(p + 76));
  d.output_dtype = static_cast<DType>(LoadU32(p + 80));
  d.input2_dtype = static_cast<DType>(LoadU32(p + 84));
  d.activation = LoadU32(p + 88);
  std::memcpy(&d.act_lo, p + 92, 4);
  std::memcpy(&d.act_hi, p + 96, 4);
  std::memcpy(&d.input_alpha, p + 100, 4);
  std::memcpy(&d.output_alpha, p + 104, 4);
  d.weights_offset = LoadU64(p + 112);
  d.weights_bytes = LoadU64(p + 120);
  d.scales_offset = LoadU64(p + 128);
  d.bias_offset = LoadU64(p + 136);
  d.input_offset = LoadU64(p + 144);
  d.input2_offset = LoadU64(p + 152);
  d.output_offset = LoadU64(p + 160);
  return d;
}

// The checks of one descriptor, in the order the file comment gives them.
DeviceError CheckDescriptor(const Descriptor& d, uint32_t max_batch,
                            absl::Span<const uint8_t> buffer, int max_sb) {
  const uint64_t size = buffer.size();
  if (d.op != LayerKind::kConv && d.op != LayerKind::kMaxPool &&
      d.op != LayerKind::kAdd && d.op != LayerKind::kRelu &&
      d.op != LayerKind::kClip) {
    return DeviceError::kUnsupportedOp;
  }
  for (uint32_t v : {d.in_c, d.in_h, d.in_w, d.out_c, d.out_h, d.out_w,
                     d.kernel_h, d.kernel_w, d.stride_h, d.stride_w,
                     d.dilation_h, d.dilation_w, d.group}) {
    if (!DimOk(v)) return DeviceError::kBadDescriptor;
  }
  if (d.pad_top >= kMaxDim || d.pad_left >= kMaxDim) {
    return DeviceError::kBadDescriptor;
  }
  if (!KnownDType(d.input_dtype) || !KnownDType(d.output_dtype) ||
      !KnownDType(d.input2_dtype) || d.activation > 2) {
    return DeviceError::kBadDescriptor;
  }
  if (d.activation == 2 && !(d.act_lo <= d.act_hi)) {
    return DeviceError::kBadDescriptor;
  }
  uint64_t in_elems = 0;
  uint64_t out_elems = 0;
  if (!Mul(uint64_t{d.in_c} * d.in_h, d.in_w, &in_elems) ||
      !Mul(uint64_t{d.out_c} * d.out_h, d.out_w, &out_elems)) {
    return DeviceError::kBadDescriptor;
  }
  const uint64_t in_bytes =
      in_elems * static_cast<uint64_t>(DTypeBytes(d.input_dtype)) * max_batch;
  const uint64_t out_bytes =
      out_elems * static_cast<uint64_t>(DTypeBytes(d.output_dtype)) * max_batch;
  if (!RangeOk(d.input_offset, in_bytes, size) ||
      !RangeOk(d.output_offset, out_bytes, size)) {
    return DeviceError::kOutOfBounds;
  }
  uint64_t work = 0;
  switch (d.op) {
    case LayerKind::kConv: {
      Format wf = *Format::Create(2, 1, true);
      Format xf = wf;
      if (!UnpackFormat(d.weight_format, &wf) ||
          !UnpackFormat(d.input_format, &xf) || !wf.is_signed()) {
        return DeviceError::kBadDescriptor;
      }
      if (wf.sb() > max_sb) return DeviceError::kUnsupportedFormat;
      if (!FiniteAlpha(d.input_alpha)) return DeviceError::kBadDescriptor;
      if (d.input_dtype != DType::kF32 && !HoldsFormat(d.input_dtype, xf)) {
        return DeviceError::kBadDescriptor;
      }
      if (d.output_dtype != DType::kF32) {
        Format of = wf;
        if (!UnpackFormat(d.output_format, &of) ||
            !HoldsFormat(d.output_dtype, of) || !FiniteAlpha(d.output_alpha)) {
          return DeviceError::kBadDescriptor;
        }
      }
      if (d.in_c % d.group != 0 || d.out_c % d.group != 0) {
        return DeviceError::kBadDescriptor;
      }
      uint64_t weights = 0;
      uint64_t macs = 0;
      if (!Mul(uint64_t{d.out_c} * (d.in_c / d.group),
               uint64_t{d.kernel_h} * d.kernel_w, &weights) ||
          !Mul(out_elems, weights / d.out_c, &macs) ||
          !Mul(macs, max_batch, &work)) {
        return DeviceError::kBadDescriptor;
      }
      const int64_t packed =
          PackedBytes(static_cast<int64_t>(weights), wf.bits());
      if (packed < 0 || d.weights_bytes != static_cast<uint64_t>(packed)) {
        return DeviceError::kBadDescriptor;
      }
      if (d.weights_offset > size ||
          d.weights_bytes > size - d.weights_offset ||
          !RangeOk(d.scales_offset, uint64_t{d.out_c} * 4, size) ||
          !RangeOk(d.bias_offset, uint64_t{d.out_c} * 4, size)) {
        return DeviceError::kOutOfBounds;
      }
      // Every code is a level; only the last byte's padding can be wrong.
      const uint64_t used_bits =
          (weights * static_cast<uint64_t>(wf.bits())) % 8;
      if (used_bits != 0 && d.weights_bytes > 0 &&
          (buffer[d.weights_offset + d.weights_bytes - 1] >> used_bits) != 0) {
        return DeviceError::kBadCode;
      }
      break;
    }
    case LayerKind::kMaxPool:
      if (d.in_c != d.out_c || d.input_dtype != d.output_dtype) {
        return DeviceError::kBadDescriptor;
      }
      if (!Mul(out_elems, uint64_t{d.kernel_h} * d.kernel_w, &work) ||
          !Mul(work, max_batch, &work)) {
        return DeviceError::kBadDescriptor;
      }
      break;
    case LayerKind::kAdd:
      if (!RangeOk(d.input2_offset, in_bytes, size)) {
        return DeviceError::kOutOfBounds;
      }
      [[fallthrough]];
    case LayerKind::kRelu:
    case LayerKind::kClip:
      if (d.in_c != d.out_c || d.in_h != d.out_h || d.in_w != d.out_w ||
          d.input_dtype != DType::kF32 || d.output_dtype != DType::kF32 ||
          (d.op == LayerKind::kAdd && d.input2_dtype != DType::kF32)) {
        return DeviceError::kBadDescriptor;
      }
      if (d.op == LayerKind::kClip && !(d.act_lo <= d.act_hi)) {
        return DeviceError::kBadDescriptor;
      }
      work = out_elems * max_batch;
      break;
  }
  if (work > kMaxLayerWork) return DeviceError::kBadDescriptor;
  return DeviceError::kNone;
}

}  // namespace

int DTypeBytes(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kS32:
      return 4;
    case DType::kS8:
    case DType::kU8:
      return 1;
  }
  return 0;
}

bool IsInteger(DType t) { return t != DType::kF32; }

uint32_t PackFormat(const Format& f) {
  return static_cast<uint32_t>(f.bits()) |
         (static_cast<uint32_t>(f.sb()) << 8) |
         (static_cast<uint32_t>(f.is_signed() ? 1 : 0) << 16);
}

bool UnpackFormat(uint32_t packed, Format* f) {
  if ((packed >> 17) != 0) return false;
  const int bits = static_cast<int>(packed & 0xFFu);
  const int sb = static_cast<int>((packed >> 8) & 0xFFu);
  absl::StatusOr<Format> made =
      Format::Create(bits, sb, ((packed >> 16) & 1u) != 0);
  if (!made.ok()) return false;
  *f = *made;
  return true;
}

int64_t Descriptor::InputImageBytes() const {
  return int64_t{in_c} * in_h * in_w * DTypeBytes(input_dtype);
}

int64_t Descriptor::OutputImageBytes() const {
  return int64_t{out_c} * out_h * out_w * DTypeBytes(output_dtype);
}

int64_t Descriptor::MacsPerImage() const {
  if (op != LayerKind::kConv || group == 0) return 0;
  return int64_t{out_c} * out_h * out_w * (in_c / group) * kernel_h * kernel_w;
}

void WriteHeader(const Header& h, uint8_t* out) {
  std::memset(out, 0, kHeaderBytes);
  StoreU32(out + 0, h.magic);
  StoreU32(out + 4, h.version);
  StoreU32(out + 8, h.layer_count);
  StoreU32(out + 12, h.batch);
  StoreU32(out + 16, h.max_batch);
  StoreU32(out + 20, kDescriptorBytes);
}

void WriteDescriptor(const Descriptor& d, uint8_t* p) {
  std::memset(p, 0, kDescriptorBytes);
  StoreU32(p + 0, static_cast<uint32_t>(d.op));
  const uint32_t dims[] = {d.in_c,
                           d.in_h,
                           d.in_w,
                           d.out_c,
                           d.out_h,
                           d.out_w,
                           d.kernel_h,
                           d.kernel_w,
                           d.stride_h,
                           d.stride_w,
                           d.pad_top,
                           d.pad_left,
                           d.dilation_h,
                           d.dilation_w,
                           d.group,
                           d.weight_format,
                           d.input_format,
                           d.output_format,
                           static_cast<uint32_t>(d.input_dtype),
                           static_cast<uint32_t>(d.output_dtype),
                           static_cast<uint32_t>(d.input2_dtype),
                           d.activation};
  for (size_t i = 0; i < std::size(dims); ++i) StoreU32(p + 4 + 4 * i, dims[i]);
  std::memcpy(p + 92, &d.act_lo, 4);
  std::memcpy(p + 96, &d.act_hi, 4);
  std::memcpy(p + 100, &d.input_alpha, 4);
  std::memcpy(p + 104, &d.output_alpha, 4);
  StoreU64(p + 112, d.weights_offset);
  StoreU64(p + 120, d.weights_bytes);
  StoreU64(p + 128, d.scales_offset);
  StoreU64(p + 136, d.bias_offset);
  StoreU64(p + 144, d.input_offset);
  StoreU64(p + 152, d.input2_offset);
  StoreU64(p + 160, d.output_offset);
}

CheckedProgram ReadProgram(absl::Span<const uint8_t> buffer, uint64_t offset,
                           int max_sb) {
  CheckedProgram out;
  const uint64_t size = buffer.size();
  if (offset % 8 != 0 || offset > size || size - offset < kHeaderBytes) {
    out.error = DeviceError::kBadProgramOffset;
    return out;
  }
  const uint8_t* h = buffer.data() + offset;
  out.header.magic = LoadU32(h);
  out.header.version = LoadU32(h + 4);
  out.header.layer_count = LoadU32(h + 8);
  out.header.batch = LoadU32(h + 12);
  out.header.max_batch = LoadU32(h + 16);
  if (out.header.magic != kProgramMagic) {
    out.error = DeviceError::kBadMagic;
    return out;
  }
  if (out.header.version != kProgramVersion) {
    out.error = DeviceError::kBadVersion;
    return out;
  }
  const Header& hd = out.header;
  if (LoadU32(h + 20) != kDescriptorBytes || hd.layer_count == 0 ||
      hd.layer_count > kMaxLayers || hd.max_batch == 0 ||
      hd.max_batch > kMaxBatch || hd.batch == 0 || hd.batch > hd.max_batch) {
    out.error = DeviceError::kBadDescriptor;
    return out;
  }
  const uint64_t table = uint64_t{hd.layer_count} * kDescriptorBytes;
  if (size - offset - kHeaderBytes < table) {
    out.error = DeviceError::kOutOfBounds;
    return out;
  }
  out.layers.reserve(hd.layer_count);
  for (uint32_t i = 0; i < hd.layer_count; ++i) {
    const Descriptor d =
        ParseDescriptor(h + kHeaderBytes + uint64_t{i} * kDescriptorBytes);
    const DeviceError e = CheckDescriptor(d, hd.max_batch, buffer, max_sb);
    if (e != DeviceError::kNone) {
      out.error = e;
      out.failed_layer = static_cast<int>(i);
      return out;
    }
    out.layers.push_back(d);
  }
  return out;
}

}  // namespace esb::accel
