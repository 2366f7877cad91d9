#include "core/runtime/loop_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/graph/graph.h"
#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

using graph::Activation;

std::vector<float> Random(int64_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(size));
  for (float& x : v) x = dist(rng);
  return v;
}

// NarrowGemm against the sum written out in double, over row counts, depths
// that are and are not multiples of a vector, column counts with every tail
// of the four-column blocks, with and without bias, and each activation.
TEST(NarrowGemmTest, MatchesTheSumOnEveryShapeAndEpilogue) {
  const std::vector<Activation> activations = {
      {},
      {Activation::Kind::kRelu, 0.0f, 0.0f},
      {Activation::Kind::kClip, -0.5f, 0.75f},
  };
  uint32_t seed = 1;
  int checked = 0;
  for (int64_t rows : {1, 2, 3, 8}) {
    for (int64_t k : {1, 7, 16, 37, 300}) {
      for (int64_t n : {1, 2, 3, 4, 5, 8, 9, 70}) {
        for (bool with_bias : {false, true}) {
          for (const Activation& act : activations) {
            const std::vector<float> x = Random(rows * k, ++seed);
            const std::vector<float> w = Random(n * k, ++seed);
            const std::vector<float> bias = Random(n, ++seed);
            std::vector<float> y(static_cast<size_t>(rows * n), NAN);
            NarrowGemm(x.data(), rows, k, w.data(), n,
                       with_bias ? bias.data() : nullptr, act, y.data());
            for (int64_t r = 0; r < rows; ++r) {
              for (int64_t j = 0; j < n; ++j) {
                double sum = with_bias ? bias[j] : 0.0;
                for (int64_t i = 0; i < k; ++i) {
                  sum += static_cast<double>(x[r * k + i]) * w[j * k + i];
                }
                const float expected = graph::Apply(act, sum);
                ASSERT_NEAR(y[r * n + j], expected,
                            1e-5 + 1e-5 * std::abs(expected))
                    << absl::StrCat("rows ", rows, " k ", k, " n ", n, " bias ",
                                    with_bias, " activation ",
                                    static_cast<int>(act.kind), " at [", r,
                                    ", ", j, "]");
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 10000);
}

// ConcatSlabs against the copy written out element by element, on slab
// mixes with empty and one-float slabs, one row and many, and totals on
// both sides of the threshold where the rows split over the threads (so
// that a thread's range starts and ends inside slabs and rows).
TEST(ConcatSlabsTest, PutsEachSlabInItsPlaceOnEveryThreadCount) {
  const std::vector<std::vector<int64_t>> mixes = {
      {3}, {1, 1}, {4, 0, 5}, {0, 7}, {7, 0}, {1000, 33, 1}, {65536, 1}};
  const int previous = omp_get_max_threads();
  int checked = 0;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (const std::vector<int64_t>& slabs : mixes) {
      for (int64_t outer : {1, 3, 70}) {
        std::vector<std::vector<float>> inputs;
        std::vector<const float*> pointers;
        int64_t row = 0;
        for (size_t i = 0; i < slabs.size(); ++i) {
          inputs.push_back(
              Random(outer * slabs[i], 7 + static_cast<uint32_t>(i)));
          row += slabs[i];
        }
        for (const auto& in : inputs) pointers.push_back(in.data());
        std::vector<float> y(static_cast<size_t>(outer * row), -42.0f);
        ConcatSlabs(pointers, slabs, outer, y.data());
        std::vector<float> expected;
        for (int64_t r = 0; r < outer; ++r) {
          for (size_t i = 0; i < slabs.size(); ++i) {
            expected.insert(expected.end(), inputs[i].begin() + r * slabs[i],
                            inputs[i].begin() + (r + 1) * slabs[i]);
          }
        }
        ASSERT_EQ(y, expected) << threads << " threads, " << outer
                               << " rows of slabs " << slabs.size();
        ++checked;
      }
    }
  }
  omp_set_num_threads(previous);
  EXPECT_EQ(checked, 63);
}

// Every element of the space-to-depth image against its definition, in
// row-major, channel-blocked (the last block part-filled) and
// channels-last layouts, on one and two threads.
TEST(SpaceToDepthTest, EveryElementIsItsInputPixelOrZero) {
  struct Case {
    std::vector<int64_t> x_shape;
    int64_t sh, sw, pad_top, pad_left, out_h, out_w;
  };
  const std::vector<Case> cases = {
      {{2, 3, 13, 11}, 4, 4, 2, 2, 4, 3},
      {{1, 2, 7, 9}, 3, 2, 1, 0, 3, 6},
      {{3, 1, 5, 5}, 2, 2, 0, 3, 4, 2},
  };
  const int previous = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (const Case& c : cases) {
      const int64_t n = c.x_shape[0];
      const int64_t channels = c.x_shape[1];
      const int64_t h = c.x_shape[2];
      const int64_t w = c.x_shape[3];
      const int64_t image_channels = channels * c.sh * c.sw;
      const std::vector<float> x = Random(n * channels * h * w, 11);
      for (int64_t block : {int64_t{1}, int64_t{8}, image_channels}) {
        const int64_t blocks = (image_channels + block - 1) / block;
        std::vector<float> y(
            static_cast<size_t>(n * blocks * block * c.out_h * c.out_w),
            -42.0f);
        SpaceToDepth(x.data(), c.x_shape, c.sh, c.sw, c.pad_top, c.pad_left,
                     c.out_h, c.out_w, block, blocks, y.data());
        int64_t nonzero = 0;
        for (int64_t b = 0; b < n; ++b) {
          for (int64_t k = 0; k < blocks * block; ++k) {
            for (int64_t i = 0; i < c.out_h; ++i) {
              for (int64_t j = 0; j < c.out_w; ++j) {
                float expected = 0.0f;
                const int64_t ch = k / (c.sh * c.sw);
                const int64_t row = i * c.sh + k / c.sw % c.sh - c.pad_top;
                const int64_t col = j * c.sw + k % c.sw - c.pad_left;
                if (k < image_channels && row >= 0 && row < h && col >= 0 &&
                    col < w) {
                  expected = x[((b * channels + ch) * h + row) * w + col];
                  ++nonzero;
                }
                const float got =
                    y[(((b * blocks + k / block) * c.out_h + i) * c.out_w + j) *
                          block +
                      k % block];
                ASSERT_EQ(got, expected)
                    << "image " << b << " channel " << k << " at " << i << ","
                    << j << ", block " << block << ", " << threads
                    << " threads";
              }
            }
          }
        }
        EXPECT_GT(nonzero, 0);
      }
    }
  }
  omp_set_num_threads(previous);
}

// The max over each window against a direct loop: row-major (blocks of
// 1), blocks of 8 and 16 with the last one part-filled, and channels-last
// (one block of all 20), on one and two threads. A blocked layout's
// padding lanes come out zero, also where a window has no tap inside x.
TEST(MaxPool2dTest, EachOutputIsItsWindowsMaxAndPaddingLanesStayZero) {
  struct Case {
    int64_t h, w;
    graph::WindowGeometry window;
  };
  auto geometry = [](std::vector<int64_t> kernel, std::vector<int64_t> strides,
                     std::vector<int64_t> dilations,
                     std::vector<int64_t> pads_begin,
                     std::vector<int64_t> output) {
    graph::WindowGeometry g;
    g.kernel = std::move(kernel);
    g.strides = std::move(strides);
    g.dilations = std::move(dilations);
    g.pads_begin = std::move(pads_begin);
    g.output = std::move(output);
    return g;
  };
  const std::vector<Case> cases = {
      {8, 8, geometry({2, 2}, {2, 2}, {1, 1}, {0, 0}, {4, 4})},
      {9, 7, geometry({3, 3}, {2, 2}, {1, 1}, {1, 1}, {5, 4})},
      {7, 6, geometry({3, 2}, {2, 3}, {2, 1}, {0, 1}, {2, 3})},
      // Ceil mode: the last window runs past the input.
      {6, 6, geometry({3, 3}, {2, 2}, {1, 1}, {0, 0}, {3, 3})},
      // Taps -1 and 1 of a single row: no window has one inside x.
      {1, 4, geometry({2, 1}, {1, 1}, {2, 1}, {1, 0}, {1, 4})},
  };
  constexpr int64_t kImages = 2;
  constexpr int64_t kChannels = 20;
  const int previous = omp_get_max_threads();
  int checked = 0;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (size_t ci = 0; ci < cases.size(); ++ci) {
      const Case& c = cases[ci];
      const graph::WindowGeometry& g = c.window;
      for (int64_t block : {int64_t{1}, int64_t{8}, int64_t{16}, kChannels}) {
        const int64_t blocks = (kChannels + block - 1) / block;
        const int64_t padded = blocks * block;
        // x[image][channel][row][col] at its place in the blocked layout,
        // the padding lanes zero.
        auto at = [&](int64_t image, int64_t channel, int64_t row, int64_t col,
                      int64_t rows, int64_t cols) {
          return (((image * blocks + channel / block) * rows + row) * cols +
                  col) *
                     block +
                 channel % block;
        };
        const std::vector<float> values =
            Random(kImages * kChannels * c.h * c.w, 13);
        std::vector<float> x(static_cast<size_t>(kImages * padded * c.h * c.w),
                             0.0f);
        for (int64_t i = 0; i < kImages; ++i) {
          for (int64_t ch = 0; ch < kChannels; ++ch) {
            for (int64_t row = 0; row < c.h; ++row) {
              for (int64_t col = 0; col < c.w; ++col) {
                x[at(i, ch, row, col, c.h, c.w)] =
                    values[((i * kChannels + ch) * c.h + row) * c.w + col];
              }
            }
          }
        }
        std::vector<float> y(
            static_cast<size_t>(kImages * padded * g.output[0] * g.output[1]),
            42.0f);
        MaxPool2d(x.data(), kImages, kChannels, c.h, c.w, block, g, y.data());
        for (int64_t i = 0; i < kImages; ++i) {
          for (int64_t ch = 0; ch < padded; ++ch) {
            for (int64_t oi = 0; oi < g.output[0]; ++oi) {
              for (int64_t oj = 0; oj < g.output[1]; ++oj) {
                float expected = -std::numeric_limits<float>::infinity();
                for (int64_t a = 0; a < g.kernel[0]; ++a) {
                  for (int64_t b = 0; b < g.kernel[1]; ++b) {
                    const int64_t row = oi * g.strides[0] - g.pads_begin[0] +
                                        a * g.dilations[0];
                    const int64_t col = oj * g.strides[1] - g.pads_begin[1] +
                                        b * g.dilations[1];
                    if (row < 0 || row >= c.h || col < 0 || col >= c.w) {
                      continue;
                    }
                    expected =
                        std::max(expected, x[at(i, ch, row, col, c.h, c.w)]);
                  }
                }
                if (ch >= kChannels) expected = 0.0f;
                ASSERT_EQ(y[at(i, ch, oi, oj, g.output[0], g.output[1])],
                          expected)
                    << "case " << ci << " block " << block << " image " << i
                    << " channel " << ch << " at " << oi << "," << oj << ", "
                    << threads << " threads";
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  omp_set_num_threads(previous);
  // Two thread counts, two images, 20 + 24 + 32 + 20 channels and lanes
  // over the blocks, 16 + 20 + 6 + 9 + 4 outputs over the cases.
  EXPECT_EQ(checked, 2 * 2 * 96 * 55);
}

}  // namespace
}  // namespace esb::runtime
