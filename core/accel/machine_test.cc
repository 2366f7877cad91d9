// The PE array model on hand-made programs: products as shift-adds, the
// epilogue, requantization, pooling, and every way a program can be bad.
#include "core/accel/machine.h"

#include <cstring>
#include <random>
#include <vector>

#include "core/accel/program.h"
#include "core/esb/codes.h"
#include "core/esb/layer_quant.h"
#include "core/testing/demo.h"
#include "gtest/gtest.h"

namespace esb::accel {
namespace {

constexpr size_t kBuffer = 1 << 16;
constexpr uint64_t kWeights = 4096;
constexpr uint64_t kScales = 8192;
constexpr uint64_t kBias = 8448;
constexpr uint64_t kInput = 16384;
constexpr uint64_t kOutput = 32768;

// A 3x3 convolution, 2 input channels -> 3 output channels over a 5x5
// image, pad 1, stride 1, weights b4 sb2 signed, input b4 sb2 unsigned,
// f32 in and out, for `batch` images (max_batch 2).
class ConvProgram {
 public:
  ConvProgram()
      : buffer_(kBuffer, 0),
        wf_(demo::MakeFormat(4, 2, true)),
        xf_(demo::MakeFormat(4, 2, false)) {
    d_.op = LayerKind::kConv;
    d_.in_c = 2;
    d_.in_h = d_.in_w = 5;
    d_.out_c = 3;
    d_.out_h = d_.out_w = 5;
    d_.kernel_h = d_.kernel_w = 3;
    d_.pad_top = d_.pad_left = 1;
    d_.weight_format = PackFormat(wf_);
    d_.input_format = PackFormat(xf_);
    d_.input_alpha = 0.5f;
    d_.activation = 1;
    d_.weights_offset = kWeights;
    d_.scales_offset = kScales;
    d_.bias_offset = kBias;
    d_.input_offset = kInput;
    d_.output_offset = kOutput;
    // Weights: integer-view levels of b4 sb2 signed (0, +-1, +-2, +-3,
    // +-4, +-6, +-8, +-12), a fixed pattern.
    const std::vector<int32_t> levels =
        wf_.is_signed() ? std::vector<int32_t>{0, 1, -2, 3, -4, 6, -8, 12}
                        : std::vector<int32_t>{};
    weights_.resize(3 * 2 * 9);
    for (size_t i = 0; i < weights_.size(); ++i) {
      weights_[i] =
          levels[(i * 5 + 3) % levels.size()] * ((i % 3 == 0) ? -1 : 1);
    }
    auto packed = PackIntegers(CodeBook(wf_), weights_);
    EXPECT_TRUE(packed.ok()) << packed.status();
    d_.weights_bytes = packed->size();
    std::memcpy(buffer_.data() + kWeights, packed->data(), packed->size());
    const float scales[3] = {0.25f, 0.125f, 0.5f};
    const float bias[3] = {0.5f, -1.0f, 0.0f};
    std::memcpy(buffer_.data() + kScales, scales, sizeof(scales));
    std::memcpy(buffer_.data() + kBias, bias, sizeof(bias));
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-0.5f, 4.0f);
    input_.resize(2 * 50);
    for (float& v : input_) v = u(rng);
    std::memcpy(buffer_.data() + kInput, input_.data(), input_.size() * 4);
    header_.layer_count = 1;
    header_.batch = 2;
    header_.max_batch = 2;
  }

  void Write() {
    WriteHeader(header_, buffer_.data());
    WriteDescriptor(d_, buffer_.data() + kHeaderBytes);
  }
  MachineRun Run(int max_sb = 4) {
    Write();
    ArrayConfig c;
    c.max_sb = max_sb;
    return Execute(absl::MakeSpan(buffer_), 0, c);
  }

  // The layer's outputs as layer_quant.h defines them, computed with
  // plain multiplications.
  std::vector<float> Expected() const {
    std::vector<float> out(2 * 75);
    std::vector<int32_t> xi(input_.size());
    QuantizeToIntegers(xf_, 0.5f, input_.data(), xi.data(), xi.size());
    const float scales[3] = {0.25f, 0.125f, 0.5f};
    const float bias[3] = {0.5f, -1.0f, 0.0f};
    for (int n = 0; n < 2; ++n) {
      for (int m = 0; m < 3; ++m) {
        for (int oh = 0; oh < 5; ++oh) {
          for (int ow = 0; ow < 5; ++ow) {
            int64_t acc = 0;
            for (int c = 0; c < 2; ++c) {
              for (int kh = 0; kh < 3; ++kh) {
                for (int kw = 0; kw < 3; ++kw) {
                  const int ih = oh - 1 + kh;
                  const int iw = ow - 1 + kw;
                  if (ih < 0 || ih >= 5 || iw < 0 || iw >= 5) continue;
                  acc += int64_t{xi[n * 50 + c * 25 + ih * 5 + iw]} *
                         weights_[((m * 2 + c) * 3 + kh) * 3 + kw];
                }
              }
            }
            float y;
            Dequantize(&acc, 1, scales[m], bias[m], 1, 0, 0, &y);
            out[n * 75 + m * 25 + oh * 5 + ow] = y;
          }
        }
      }
    }
    return out;
  }

  std::vector<float> Output(size_t n) const {
    std::vector<float> y(n);
    std::memcpy(y.data(), buffer_.data() + kOutput, n * 4);
    return y;
  }

  std::vector<uint8_t> buffer_;
  Format wf_;
  Format xf_;
  Descriptor d_;
  Header header_;
  std::vector<int32_t> weights_;
  std::vector<float> input_;
};

TEST(MachineTest, ConvolutionIsTheIntegerProductDefinition) {
  ConvProgram p;
  const MachineRun run = p.Run();
  ASSERT_EQ(run.error, DeviceError::kNone);
  EXPECT_EQ(run.layers_done, 1);
  const std::vector<float> want = p.Expected();
  const std::vector<float> got = p.Output(want.size());
  EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0);
  // Relu kept every output non-negative and some are positive.
  EXPECT_GT(*std::max_element(got.begin(), got.end()), 0.0f);
  EXPECT_GE(*std::min_element(got.begin(), got.end()), 0.0f);
}

TEST(MachineTest, BatchFieldLimitsTheImagesRun) {
  ConvProgram p;
  p.header_.batch = 1;
  ASSERT_EQ(p.Run().error, DeviceError::kNone);
  const std::vector<float> got = p.Output(150);
  const std::vector<float> want = p.Expected();
  EXPECT_EQ(std::memcmp(want.data(), got.data(), 75 * 4), 0);
  for (size_t i = 75; i < 150; ++i) ASSERT_EQ(got[i], 0.0f) << i;
}

TEST(MachineTest, IntegerOutputIsTheNextLayersGrid) {
  ConvProgram p;
  const Format next = demo::MakeFormat(4, 2, false);
  p.d_.output_dtype = DType::kU8;
  p.d_.output_format = PackFormat(next);
  p.d_.output_alpha = 0.75f;
  ASSERT_EQ(p.Run().error, DeviceError::kNone);
  const std::vector<float> y = p.Expected();
  std::vector<int32_t> want(y.size());
  QuantizeToIntegers(next, 0.75f, y.data(), want.data(), y.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(p.buffer_[kOutput + i], want[i]) << i;
  }
}

TEST(MachineTest, CostCountsShiftAddsAndTiles) {
  ConvProgram p;
  const MachineRun run = p.Run();
  ASSERT_EQ(run.per_layer.size(), 1u);
  const Cost& c = run.per_layer[0];
  EXPECT_EQ(c.macs, 2 * 75 * 18);  // Batch 2, 75 outputs, 18 MACs each.
  EXPECT_EQ(c.shift_adds, c.macs * 2);
  // K = 18 takes two row tiles of 16: 2 images x 2 tiles x 25 pixels x
  // sb 2 cycles.
  EXPECT_EQ(c.compute_cycles, 2 * 2 * 25 * 2);
  EXPECT_EQ(c.dma_bytes,
            static_cast<int64_t>(p.d_.weights_bytes) + 3 * 8 + 2 * (200 + 300));
  EXPECT_EQ(c.cycles, std::max(c.compute_cycles, c.dma_cycles) + 32);
  ArrayConfig narrow;
  narrow.cols = 1;
  EXPECT_EQ(LayerCost(p.d_, 2, narrow).compute_cycles, 3 * 2 * 2 * 25 * 2);
}

TEST(MachineTest, MaxPoolKeepsIntegersOnTheirGrid) {
  std::vector<uint8_t> buffer(kBuffer, 0);
  Descriptor d;
  d.op = LayerKind::kMaxPool;
  d.in_c = d.out_c = 1;
  d.in_h = d.in_w = 4;
  d.out_h = d.out_w = 2;
  d.kernel_h = d.kernel_w = 2;
  d.stride_h = d.stride_w = 2;
  d.input_dtype = d.output_dtype = DType::kS8;
  d.input_offset = kInput;
  d.output_offset = kOutput;
  const int8_t x[16] = {1, -3, 4, 0, 2, 2, -7, -8, -1, -1, 5, 6, -2, -4, 6, 5};
  std::memcpy(buffer.data() + kInput, x, 16);
  Header h;
  h.layer_count = 1;
  WriteHeader(h, buffer.data());
  WriteDescriptor(d, buffer.data() + kHeaderBytes);
  ASSERT_EQ(Execute(absl::MakeSpan(buffer), 0, {}).error, DeviceError::kNone);
  EXPECT_EQ(static_cast<int8_t>(buffer[kOutput + 0]), 2);
  EXPECT_EQ(static_cast<int8_t>(buffer[kOutput + 1]), 4);
  EXPECT_EQ(static_cast<int8_t>(buffer[kOutput + 2]), -1);
  EXPECT_EQ(static_cast<int8_t>(buffer[kOutput + 3]), 6);
}

struct BadCase {
  const char* name;
  void (*mutate)(ConvProgram&);
  DeviceError error;
};

class BadProgramTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadProgramTest, IsRefusedWithItsCodeBeforeAnyWrite) {
  ConvProgram p;
  GetParam().mutate(p);
  const std::vector<float> before = p.Output(150);
  const MachineRun run = p.Run();
  EXPECT_EQ(run.error, GetParam().error) << GetParam().name;
  EXPECT_EQ(run.layers_done, 0);
  EXPECT_EQ(p.Output(150), before);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadProgramTest,
    ::testing::Values(
        BadCase{"magic", [](ConvProgram& p) { p.header_.magic = 1; },
                DeviceError::kBadMagic},
        BadCase{"version", [](ConvProgram& p) { p.header_.version = 9; },
                DeviceError::kBadVersion},
        BadCase{"no_layers", [](ConvProgram& p) { p.header_.layer_count = 0; },
                DeviceError::kBadDescriptor},
        BadCase{"too_many_layers",
                [](ConvProgram& p) { p.header_.layer_count = 400; },
                DeviceError::kOutOfBounds},
        BadCase{"batch_over_max", [](ConvProgram& p) { p.header_.batch = 3; },
                DeviceError::kBadDescriptor},
        BadCase{"unknown_op",
                [](ConvProgram& p) { p.d_.op = static_cast<LayerKind>(77); },
                DeviceError::kUnsupportedOp},
        BadCase{"zero_dim", [](ConvProgram& p) { p.d_.in_h = 0; },
                DeviceError::kBadDescriptor},
        BadCase{"huge_dim", [](ConvProgram& p) { p.d_.out_w = 1u << 20; },
                DeviceError::kBadDescriptor},
        BadCase{"output_past_the_end",
                [](ConvProgram& p) { p.d_.output_offset = kBuffer - 100; },
                DeviceError::kOutOfBounds},
        BadCase{"input_offset_wraps",
                [](ConvProgram& p) { p.d_.input_offset = ~uint64_t{3}; },
                DeviceError::kOutOfBounds},
        BadCase{"misaligned_input",
                [](ConvProgram& p) { p.d_.input_offset = kInput + 2; },
                DeviceError::kOutOfBounds},
        BadCase{"weights_past_the_end",
                [](ConvProgram& p) { p.d_.weights_offset = kBuffer - 4; },
                DeviceError::kOutOfBounds},
        BadCase{"weight_bytes_wrong",
                [](ConvProgram& p) { p.d_.weights_bytes += 1; },
                DeviceError::kBadDescriptor},
        BadCase{"scales_past_the_end",
                [](ConvProgram& p) { p.d_.scales_offset = kBuffer - 8; },
                DeviceError::kOutOfBounds},
        BadCase{"invalid_format",
                [](ConvProgram& p) { p.d_.weight_format = 0x0108; },
                DeviceError::kBadDescriptor},
        BadCase{"unsigned_weights",
                [](ConvProgram& p) {
                  p.d_.weight_format =
                      PackFormat(demo::MakeFormat(4, 2, false));
                },
                DeviceError::kBadDescriptor},
        BadCase{"sb_beyond_caps",
                [](ConvProgram& p) {
                  p.d_.weight_format = PackFormat(demo::MakeFormat(8, 5, true));
                  p.d_.weights_bytes = 3 * 2 * 9;
                },
                DeviceError::kUnsupportedFormat},
        BadCase{"nan_alpha",
                [](ConvProgram& p) { p.d_.input_alpha = std::nanf(""); },
                DeviceError::kBadDescriptor},
        BadCase{"group_does_not_divide",
                [](ConvProgram& p) {
                  p.d_.group = 2;
                  p.d_.out_c = 3;
                },
                DeviceError::kBadDescriptor},
        BadCase{"s8_input_of_unsigned_grid",
                [](ConvProgram& p) { p.d_.input_dtype = DType::kS8; },
                DeviceError::kBadDescriptor},
        BadCase{
            "unknown_dtype",
            [](ConvProgram& p) { p.d_.output_dtype = static_cast<DType>(9); },
            DeviceError::kBadDescriptor},
        BadCase{"clip_bounds_reversed",
                [](ConvProgram& p) {
                  p.d_.activation = 2;
                  p.d_.act_lo = 1.0f;
                  p.d_.act_hi = 0.0f;
                },
                DeviceError::kBadDescriptor},
        BadCase{"padding_bits_set",
                [](ConvProgram& p) {
                  // 54 codes of 5 bits leave 2 padding bits in the last
                  // of 34 bytes; one of them set.
                  const Format f = demo::MakeFormat(5, 2, true);
                  auto packed = PackIntegers(CodeBook(f), p.weights_);
                  ASSERT_TRUE(packed.ok());
                  ASSERT_EQ(packed->size(), 34u);
                  std::memcpy(p.buffer_.data() + kWeights, packed->data(), 34);
                  p.buffer_[kWeights + 33] |= 0x80;
                  p.d_.weight_format = PackFormat(f);
                  p.d_.weights_bytes = 34;
                },
                DeviceError::kBadCode}),
    [](const auto& info) { return std::string{info.param.name}; });

TEST(MachineTest, ProgramOffsetOutsideOrMisalignedIsRefused) {
  ConvProgram p;
  p.Write();
  ArrayConfig c;
  EXPECT_EQ(Execute(absl::MakeSpan(p.buffer_), 4, c).error,
            DeviceError::kBadProgramOffset);
  EXPECT_EQ(Execute(absl::MakeSpan(p.buffer_), kBuffer - 8, c).error,
            DeviceError::kBadProgramOffset);
  EXPECT_EQ(Execute(absl::MakeSpan(p.buffer_), ~uint64_t{7}, c).error,
            DeviceError::kBadProgramOffset);
}

// Random corruption of a valid program never reads or writes outside the
// buffer: every run ends (error or not) and the buffer keeps its size.
TEST(MachineTest, CorruptedProgramsNeverEscapeTheBuffer) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 3000; ++trial) {
    ConvProgram p;
    p.Write();
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const size_t at = rng() % (kHeaderBytes + kDescriptorBytes);
      p.buffer_[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    const MachineRun run = Execute(absl::MakeSpan(p.buffer_), 0, ArrayConfig{});
    ASSERT_LE(run.layers_done, 1);
    ASSERT_EQ(p.buffer_.size(), kBuffer);
  }
}

TEST(ArrayTest, DefaultArrayFitsTheZcu102AndAHugeOneDoesNot) {
  const Resources r = EstimateResources(ArrayConfig{});
  EXPECT_TRUE(r.fits_zcu102);
  EXPECT_GT(r.luts, 16 * 16 * 40);
  ArrayConfig huge;
  huge.rows = huge.cols = 255;
  EXPECT_FALSE(EstimateResources(huge).fits_zcu102);
}

TEST(ArrayTest, EnergyGrowsWithWorkAndTime) {
  Cost small;
  small.cycles = 1000;
  small.shift_adds = 1000;
  Cost big = small;
  big.cycles = 2000;
  big.dma_bytes = 1 << 20;
  const ArrayConfig c;
  EXPECT_GT(EnergyJoules(big, c), EnergyJoules(small, c));
  EXPECT_DOUBLE_EQ(Seconds(200000, c), 1e-3);  // 200 MHz.
  EXPECT_EQ(Describe(c), "16x16 PEs, sb<=8, 200 MHz");
}

}  // namespace
}  // namespace esb::accel
