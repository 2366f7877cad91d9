#include "fpga_agent/batcher.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/env/env.h"
#include "fpga_agent/sim_backend.h"
#include "fpga_agent/test_package.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::testing::HasSubstr;

// Output row i = 2 * input row i + 1 (rows of 3 floats), plus a second
// output [N, 1] holding each row's sum. Records every batch size; a run
// can be held until released.
class FakeModel final : public LoadedModel {
 public:
  explicit FakeModel(int max_batch, absl::Duration run_time = {})
      : max_batch_(max_batch), run_time_(run_time) {}

  absl::StatusOr<std::vector<graph::Tensor>> Run(const graph::Tensor& input,
                                                 BatchStats* stats) override {
    {
      absl::MutexLock lock(&mu_);
      batches_.push_back(input.shape[0]);
      mu_.Await(absl::Condition(
          +[](bool* held) { return !*held; }, &held_));
      if (!fail_.ok()) return fail_;
    }
    absl::SleepFor(run_time_);
    graph::Tensor doubled{input.shape, input.data};
    for (float& v : doubled.data) v = 2 * v + 1;
    const int64_t n = input.shape[0];
    const int64_t per_row = input.size() / n;
    graph::Tensor sums{{n, 1}, std::vector<float>(n)};
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < per_row; ++i) {
        sums.data[r] += input.data[r * per_row + i];
      }
    }
    stats->operations = n;
    return std::vector<graph::Tensor>{doubled, sums};
  }
  int max_batch() const override { return max_batch_; }
  std::string Description() const override { return "fake"; }

  void Hold(bool held) {
    absl::MutexLock lock(&mu_);
    held_ = held;
  }
  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_ = std::move(status);
  }
  std::vector<int64_t> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  int runs_started() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(batches_.size());
  }

 private:
  const int max_batch_;
  const absl::Duration run_time_;
  absl::Mutex mu_;
  std::vector<int64_t> batches_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
};

graph::Tensor Rows(int64_t n, float base) {
  graph::Tensor t{{n, 3}, {}};
  for (int64_t i = 0; i < n * 3; ++i) t.data.push_back(base + i);
  return t;
}

TEST(BatcherTest, ConcurrentRequestsShareABatchAndGetTheirOwnRows) {
  FakeModel model(8);
  BatcherOptions options;
  options.max_batch = 8;
  options.max_queue_delay = absl::Milliseconds(200);
  options.max_in_flight = 1;
  options.run_when_idle = false;
  Batcher batcher(&model, options, nullptr, "fake");

  constexpr int kCallers = 6;
  std::vector<absl::StatusOr<BatchResult>> results(kCallers);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      // Callers send 1 or 2 rows each, 8 rows in all past the first 6.
      results[c] = batcher.Run(Rows(c % 2 + 1, 100.0f * c));
    });
  }
  for (std::thread& t : callers) t.join();

  const std::vector<int64_t> batches = model.batches();
  int64_t largest = 0;
  for (int64_t b : batches) largest = std::max(largest, b);
  EXPECT_GT(largest, 1) << "no request was merged with another";
  for (int c = 0; c < kCallers; ++c) {
    ASSERT_TRUE(results[c].ok()) << results[c].status();
    const int64_t n = c % 2 + 1;
    const graph::Tensor in = Rows(n, 100.0f * c);
    ASSERT_EQ(results[c]->outputs.size(), 2u);
    const graph::Tensor& doubled = results[c]->outputs[0];
    EXPECT_EQ(doubled.shape, (std::vector<int64_t>{n, 3}));
    ASSERT_EQ(doubled.data.size(), in.data.size());
    for (size_t i = 0; i < in.data.size(); ++i) {
      EXPECT_EQ(doubled.data[i], 2 * in.data[i] + 1) << "caller " << c;
    }
    const graph::Tensor& sums = results[c]->outputs[1];
    EXPECT_EQ(sums.shape, (std::vector<int64_t>{n, 1}));
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_EQ(sums.data[r],
                in.data[r * 3] + in.data[r * 3 + 1] + in.data[r * 3 + 2]);
    }
    EXPECT_GE(results[c]->batch_images, n);
  }
}

TEST(BatcherTest, ABatchStartsWhenFullWithoutWaitingForTheDelay) {
  FakeModel model(4);
  BatcherOptions options;
  options.max_batch = 4;
  options.max_queue_delay = absl::Seconds(30);
  options.run_when_idle = false;
  Batcher batcher(&model, options, nullptr, "fake");
  const absl::Time start = absl::Now();
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] { EXPECT_TRUE(batcher.Run(Rows(1, 0)).ok()); });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(model.batches(), (std::vector<int64_t>{4}));
}

TEST(BatcherTest, ALoneRequestOnAnIdleModelDoesNotWaitForTheDelay) {
  FakeModel model(8);
  BatcherOptions options;
  options.max_batch = 8;
  options.max_queue_delay = absl::Seconds(30);
  Batcher batcher(&model, options, nullptr, "fake");
  const absl::Time start = absl::Now();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<BatchResult> result = batcher.Run(Rows(1, i));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_LT(result->queue_seconds, 5.0);
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(model.batches(), (std::vector<int64_t>{1, 1, 1}));
}

TEST(BatcherTest, RequestsQueuedBehindABusyDeviceRunTogetherWhenItFrees) {
  FakeModel model(8);
  model.Hold(true);
  BatcherOptions options;
  options.max_batch = 8;
  options.max_queue_delay = absl::Seconds(30);
  options.max_in_flight = 1;
  Batcher batcher(&model, options, nullptr, "fake");
  std::atomic<int> done{0};
  auto count = [&](absl::StatusOr<BatchResult> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    ++done;
  };
  const absl::Time start = absl::Now();
  ASSERT_TRUE(batcher.Submit(Rows(1, 0), count).ok());
  for (int i = 0; i < 1000 && model.runs_started() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(model.runs_started(), 1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(batcher.Submit(Rows(1, i), count).ok());
  }
  model.Hold(false);
  for (int i = 0; i < 2000 && done.load() < 4; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(done.load(), 4);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(model.batches(), (std::vector<int64_t>{1, 3}));
}

TEST(BatcherTest, QueueAndComputeTimesAreMeasured) {
  FakeModel model(1, absl::Milliseconds(30));
  BatcherOptions options;
  options.max_batch = 1;
  options.max_queue_delay = absl::ZeroDuration();
  options.max_in_flight = 1;
  Batcher batcher(&model, options, nullptr, "fake");
  absl::StatusOr<BatchResult> first, second;
  std::thread a([&] { first = batcher.Run(Rows(1, 0)); });
  std::thread b([&] { second = batcher.Run(Rows(1, 1)); });
  a.join();
  b.join();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_GE(first->compute_seconds, 0.025);
  EXPECT_GE(second->compute_seconds, 0.025);
  // One of them waited for the other's run.
  EXPECT_GE(std::max(first->queue_seconds, second->queue_seconds), 0.02);
}

TEST(BatcherTest, FullQueueIsResourceExhausted) {
  FakeModel model(2);
  model.Hold(true);
  BatcherOptions options;
  options.max_batch = 2;
  options.max_queue = 4;
  options.max_queue_delay = absl::ZeroDuration();
  options.max_in_flight = 1;
  auto batcher = std::make_unique<Batcher>(&model, options, nullptr, "m");
  std::atomic<int> done{0};
  auto count = [&](absl::StatusOr<BatchResult> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    ++done;
  };
  // The first batch is taken off the queue and held in the model.
  ASSERT_TRUE(batcher->Submit(Rows(2, 0), count).ok());
  for (int i = 0; i < 1000 && model.runs_started() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(model.runs_started(), 1);
  ASSERT_TRUE(batcher->Submit(Rows(2, 0), count).ok());
  ASSERT_TRUE(batcher->Submit(Rows(2, 0), count).ok());
  absl::Status full = batcher->Submit(Rows(1, 0), count);
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_THAT(full.message(), HasSubstr("queue of model 'm' is full"));
  model.Hold(false);
  batcher.reset();  // Runs what is queued.
  EXPECT_EQ(done.load(), 3);
}

TEST(BatcherTest, RefusesEmptyAndOversizeRequests) {
  FakeModel model(4);
  BatcherOptions options;
  options.max_batch = 8;  // Capped by the model's 4.
  Batcher batcher(&model, options, nullptr, "m");
  EXPECT_EQ(batcher.max_batch(), 4);
  absl::StatusOr<BatchResult> big = batcher.Run(Rows(5, 0));
  EXPECT_TRUE(absl::IsInvalidArgument(big.status())) << big.status();
  EXPECT_THAT(big.status().message(), HasSubstr("largest 4"));
  absl::StatusOr<BatchResult> none = batcher.Run(Rows(0, 0));
  EXPECT_TRUE(absl::IsInvalidArgument(none.status())) << none.status();
}

TEST(BatcherTest, ARunsErrorReachesEveryRequestOfItsBatch) {
  FakeModel model(4);
  model.Fail(absl::DeadlineExceededError("device timed out"));
  BatcherOptions options;
  options.max_batch = 4;
  options.max_queue_delay = absl::Milliseconds(100);
  Batcher batcher(&model, options, nullptr, "m");
  std::vector<absl::StatusOr<BatchResult>> results(3);
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&, c] { results[c] = batcher.Run(Rows(1, 0)); });
  }
  for (std::thread& t : callers) t.join();
  for (const auto& r : results) {
    EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  }
}

TEST(BatcherTest, DifferentSampleShapesRunInSeparateBatches) {
  FakeModel model(8);
  model.Hold(true);
  BatcherOptions options;
  options.max_batch = 8;
  options.max_queue_delay = absl::Milliseconds(50);
  options.max_in_flight = 1;
  Batcher batcher(&model, options, nullptr, "m");
  absl::Notification a_done, b_done;
  graph::Tensor other{{1, 4}, {1, 2, 3, 4}};
  ASSERT_TRUE(batcher
                  .Submit(Rows(1, 0),
                          [&](absl::StatusOr<BatchResult> r) {
                            EXPECT_TRUE(r.ok());
                            a_done.Notify();
                          })
                  .ok());
  ASSERT_TRUE(
      batcher
          .Submit(
              other,
              [&](absl::StatusOr<BatchResult> r) {
                ASSERT_TRUE(r.ok());
                EXPECT_EQ(r->outputs[0].shape, (std::vector<int64_t>{1, 4}));
                b_done.Notify();
              })
          .ok());
  model.Hold(false);
  a_done.WaitForNotification();
  b_done.WaitForNotification();
  EXPECT_EQ(model.batches(), (std::vector<int64_t>{1, 1}));
}

// The real thing: the sim backend's model, batched, gives every caller
// exactly the bits a single run of its images gives.
TEST(BatcherTest, BatchedSimRunsEqualSingleRunsBitForBit) {
  SimBackend backend(Env::Default(), SimBackendOptions{});
  const pipeline::PackagedModel package = testing::DemoPackage();
  absl::StatusOr<std::unique_ptr<LoadedModel>> model =
      backend.Prepare(package, 8);
  ASSERT_TRUE(model.ok()) << model.status();
  BatcherOptions options;
  options.max_batch = 8;
  options.max_queue_delay = absl::Milliseconds(200);
  options.run_when_idle = false;
  Batcher batcher(model->get(), options, nullptr, "lenet");

  constexpr int kCallers = 5;
  std::vector<absl::StatusOr<BatchResult>> batched(kCallers);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      batched[c] = batcher.Run(testing::DemoImages(c * 2, c % 2 + 1));
    });
  }
  for (std::thread& t : callers) t.join();
  int largest = 0;
  for (int c = 0; c < kCallers; ++c) {
    ASSERT_TRUE(batched[c].ok()) << batched[c].status();
    largest = std::max(largest, batched[c]->batch_images);
    BatchStats stats;
    absl::StatusOr<std::vector<graph::Tensor>> single =
        (*model)->Run(testing::DemoImages(c * 2, c % 2 + 1), &stats);
    ASSERT_TRUE(single.ok()) << single.status();
    ASSERT_EQ(single->size(), batched[c]->outputs.size());
    const graph::Tensor& a = single->front();
    const graph::Tensor& b = batched[c]->outputs.front();
    EXPECT_EQ(a.shape, b.shape);
    ASSERT_EQ(a.data.size(), b.data.size());
    EXPECT_EQ(std::memcmp(a.data.data(), b.data.data(),
                          a.data.size() * sizeof(float)),
              0)
        << "caller " << c;
  }
  EXPECT_GT(largest, 1) << "no request was merged with another";
}

}  // namespace
}  // namespace esb::agent
