#include "core/runtime/loop_kernels.h"

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
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

}  // namespace
}  // namespace esb::runtime
