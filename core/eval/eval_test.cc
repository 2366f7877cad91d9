#include "core/eval/eval.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A model with two outputs per item: (x, -x) of the item's first value,
// recording the batch sizes it was called with.
struct Recorder {
  std::vector<int64_t> batches;
  InferFn Fn() {
    return [this](const graph::Tensor& t) -> absl::StatusOr<graph::Tensor> {
      batches.push_back(t.shape[0]);
      const int64_t per = static_cast<int64_t>(t.data.size()) / t.shape[0];
      graph::Tensor y{{t.shape[0], 2}, {}};
      for (int64_t i = 0; i < t.shape[0]; ++i) {
        y.data.push_back(t.data[i * per]);
        y.data.push_back(-t.data[i * per]);
      }
      return y;
    };
  }
};

TEST(EvalTest, FeedsFreeBatchesAndCollectsEveryItem) {
  std::vector<float> items;
  for (int i = 0; i < 5; ++i) items.insert(items.end(), {i - 2.0f, 0.0f});
  Recorder r;
  std::vector<int64_t> progress;
  BatchOptions options;
  options.batch = 2;
  options.on_progress = [&](int64_t done) { progress.push_back(done); };
  absl::StatusOr<Outputs> out =
      RunBatches(r.Fn(), items, 5, {2, 1, 1}, options);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(r.batches, ElementsAre(2, 2, 1));
  EXPECT_THAT(progress, ElementsAre(2, 4, 5));
  EXPECT_EQ(out->per_item, 2);
  EXPECT_THAT(Predictions(*out), ElementsAre(1, 1, 0, 0, 0));
}

TEST(EvalTest, PadsAFixedBatchAndDropsThePadding) {
  std::vector<float> items = {1, 2, 3};
  Recorder r;
  BatchOptions options;
  options.fixed_batch = 2;
  absl::StatusOr<Outputs> out = RunBatches(r.Fn(), items, 3, {1}, options);
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(r.batches, ElementsAre(2, 2));
  EXPECT_EQ(out->data.size(), 6u);
  EXPECT_EQ(out->data[4], 3.0f);
}

TEST(EvalTest, StopsWhenCancelledAndRefusesShortData) {
  std::vector<float> items(10, 1.0f);
  Recorder r;
  BatchOptions options;
  options.batch = 1;
  int asked = 0;
  options.cancelled = [&] { return ++asked > 3; };
  absl::StatusOr<Outputs> out = RunBatches(r.Fn(), items, 10, {1}, options);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(r.batches.size(), 3u);
  EXPECT_THAT(RunBatches(r.Fn(), items, 11, {1}, {}).status().message(),
              HasSubstr("do not hold 11 items"));
}

TEST(EvalTest, OutputThatIgnoresTheBatchIsAnError) {
  InferFn bad = [](const graph::Tensor&) -> absl::StatusOr<graph::Tensor> {
    return graph::Tensor{{1, 3}, {0, 0, 0}};
  };
  std::vector<float> items(4, 0.0f);
  BatchOptions options;
  options.batch = 4;
  EXPECT_EQ(RunBatches(bad, items, 4, {1}, options).status().code(),
            absl::StatusCode::kInternal);
}

TEST(EvalTest, Top1AndAgreement) {
  const std::vector<int> a = {1, 2, 3, 4};
  const std::vector<int> b = {1, 0, 3, 0};
  const std::vector<uint8_t> labels = {1, 2, 0, 0};
  EXPECT_DOUBLE_EQ(Top1(a, labels), 0.5);
  EXPECT_DOUBLE_EQ(Top1(b, labels), 0.5);
  EXPECT_DOUBLE_EQ(Agreement(a, b), 0.5);
  EXPECT_DOUBLE_EQ(Top1({}, {}), 0.0);
}

}  // namespace
}  // namespace esb::eval
