#include "core/pipeline/fit.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::pipeline {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;

graph::Activation Relu() { return {graph::Activation::Kind::kRelu}; }

// Two items of one channel, two values each ([N, C, W] = [2, 1, 2]).
graph::Tensor Values(std::vector<float> v) { return {{2, 1, 2}, std::move(v)}; }

TEST(BiasShiftTest, WithoutActivationTakesTheMeanDifference) {
  const graph::Tensor y = Values({-5, -5, 1, 1});
  const graph::Tensor yq = Values({-1, -1, 0.9f, 0.9f});
  const std::vector<double> shift = BiasShift(y, yq, {}, 1);
  // (-4 - 4 + 0.1 + 0.1) / 4.
  EXPECT_THAT(shift, ElementsAre(DoubleNear(-1.95, 1e-6)));
}

TEST(BiasShiftTest, AfterReluOnlyTheValuesThatPassCount) {
  // The negative outputs' large errors are cut off by the ReLU; the mean
  // over all values (-1.95) would zero the positive outputs.
  const graph::Tensor y = Values({-5, -5, 1, 1});
  const graph::Tensor yq = Values({-1, -1, 0.9f, 0.9f});
  EXPECT_THAT(BiasShift(y, yq, Relu(), 1), ElementsAre(DoubleNear(0.1, 1e-6)));
}

TEST(BiasShiftTest, KeepsNoShiftWhenEveryCandidateIsWorse) {
  // Errors of both signs in the linear region: no candidate beats none.
  const graph::Tensor y = Values({2, 2, 2, 2});
  const graph::Tensor yq = Values({1, 3, 1, 3});
  EXPECT_THAT(BiasShift(y, yq, Relu(), 1), ElementsAre(DoubleNear(0, 1e-9)));
}

TEST(BiasShiftTest, ChannelsAreIndependentAndClipBoundsTheLinearRegion) {
  // [N, C] = [2, 2]: channel 0 saturates at the Clip's top in the FP32
  // output, channel 1 is in range.
  const graph::Tensor y{{2, 2}, {9, 3, 9, 3}};
  const graph::Tensor yq{{2, 2}, {5.5f, 2.5f, 5.5f, 2.5f}};
  const graph::Activation clip{graph::Activation::Kind::kClip, 0.0f, 6.0f};
  const std::vector<double> shift = BiasShift(y, yq, clip, 1);
  ASSERT_EQ(shift.size(), 2u);
  // Channel 0 has no value in the linear region; a shift that lifts 5.5 to
  // the bound restores the output exactly.
  EXPECT_EQ(graph::Apply(clip, 5.5 + shift[0]), 6.0f);
  EXPECT_NEAR(shift[1], 0.5, 1e-6);
}

}  // namespace
}  // namespace esb::pipeline
