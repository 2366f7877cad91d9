// Concurrent Runs on one Executor and one EsbExecutor give, bit for bit,
// what serial Runs give; plans and their budgets.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/runtime/esb_executor.h"
#include "core/runtime/executor.h"
#include "core/testing/demo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

using graph::Tensor;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int kThreads = 8;
constexpr int kRunsPerThread = 6;
const int64_t kBatches[] = {1, 3, 8, 17};

// Calls run(x) from kThreads threads, each over every batch size in turn
// (starting at a different one) kRunsPerThread times, and checks each
// result against `serial` (the result of a serial run per batch size).
template <typename Run>
void RunConcurrently(Run run, const std::vector<Tensor>& inputs,
                     const std::vector<std::vector<float>>& serial) {
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRunsPerThread; ++r) {
        const size_t b = (t + r) % inputs.size();
        absl::StatusOr<std::vector<Tensor>> y = run(inputs[b]);
        if (!y.ok()) {
          ++failures;
          continue;
        }
        const std::vector<float>& got = (*y)[0].data;
        if (got.size() != serial[b].size() ||
            std::memcmp(got.data(), serial[b].data(),
                        got.size() * sizeof(float)) != 0) {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0) << "runs differing from the serial run";
}

std::vector<Tensor> Inputs() {
  const std::vector<float> images =
      demo::DemoImages("t10k-images-idx3-ubyte.gz", 32);
  std::vector<Tensor> inputs;
  int64_t start = 0;
  for (int64_t batch : kBatches) {
    inputs.push_back(demo::DemoBatch(images, start % 8, batch));
    start += 5;
  }
  return inputs;
}

TEST(ConcurrentRunTest, ExecutorMatchesSerialRunsBitForBit) {
  const graph::Graph g = demo::LoadDemoModel("resnet");
  ExecutorOptions options;
  options.threads = 1;
  options.max_idle_runs = 2;  // Fewer than the callers: some runs are new.
  auto executor = Executor::Create(g, options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  const std::vector<Tensor> inputs = Inputs();
  std::vector<std::vector<float>> serial;
  for (const Tensor& x : inputs) {
    auto y = (*executor)->Run({x});
    ASSERT_TRUE(y.ok()) << y.status();
    serial.push_back((*y)[0].data);
  }
  RunConcurrently([&](const Tensor& x) { return (*executor)->Run({x}); },
                  inputs, serial);
  EXPECT_EQ((*executor)->cached_shapes(), 4);
  EXPECT_LE((*executor)->idle_runs({inputs[0].shape}), 2);
  EXPECT_GE((*executor)->idle_runs({inputs[0].shape}), 1);
}

TEST(ConcurrentRunTest, EsbExecutorMatchesSerialRunsBitForBit) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  const auto layers = demo::DemoLayers(g, demo::MakeFormat(4, 2, true),
                                       demo::MakeFormat(4, 2, false));
  for (auto path : {EsbExecutorOptions::Path::kAuto,
                    EsbExecutorOptions::Path::kReference}) {
    EsbExecutorOptions options;
    options.threads = 1;
    options.path = path;
    auto executor = EsbExecutor::Create(g, layers, options);
    ASSERT_TRUE(executor.ok()) << executor.status();
    SCOPED_TRACE((*executor)->Description());
    const std::vector<Tensor> inputs = Inputs();
    std::vector<std::vector<float>> serial;
    for (const Tensor& x : inputs) {
      auto y = (*executor)->Run({x});
      ASSERT_TRUE(y.ok()) << y.status();
      serial.push_back((*y)[0].data);
    }
    RunConcurrently([&](const Tensor& x) { return (*executor)->Run({x}); },
                    inputs, serial);
  }
}

TEST(ConcurrentRunTest, RunsBeyondTheConcurrencyBoundWaitAndMatch) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  ExecutorOptions options;
  options.threads = 1;
  options.max_idle_runs = kThreads;  // Room to keep every run made.
  options.max_concurrent_runs = 2;
  auto executor = Executor::Create(g, options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  const std::vector<Tensor> inputs = Inputs();
  std::vector<std::vector<float>> serial;
  for (const Tensor& x : inputs) {
    auto y = (*executor)->Run({x});
    ASSERT_TRUE(y.ok()) << y.status();
    serial.push_back((*y)[0].data);
  }
  RunConcurrently([&](const Tensor& x) { return (*executor)->Run({x}); },
                  inputs, serial);
  // No more than two runs of a plan ever existed at once, so no more than
  // two were pooled.
  for (const Tensor& x : inputs) {
    EXPECT_GE((*executor)->idle_runs({x.shape}), 1);
    EXPECT_LE((*executor)->idle_runs({x.shape}), 2);
  }
}

TEST(ConcurrentRunTest, ZeroConcurrentRunsIsInvalid) {
  ExecutorOptions options;
  options.max_concurrent_runs = 0;
  auto executor = Executor::Create(demo::LoadDemoModel("lenet"), options);
  EXPECT_EQ(executor.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(executor.status().message(), HasSubstr("max_concurrent_runs"));
}

TEST(ConcurrentRunTest, ConcurrentFirstRunsOfNewShapesBuildOnePlanEach) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  ExecutorOptions options;
  options.threads = 1;
  options.max_cached_shapes = 2;  // Four shapes: plans are evicted mid-run.
  auto executor = Executor::Create(g, options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  const std::vector<Tensor> inputs = Inputs();
  std::vector<std::vector<float>> serial;
  {
    auto reference = Executor::Create(g, options);
    ASSERT_TRUE(reference.ok()) << reference.status();
    for (const Tensor& x : inputs) {
      auto y = (*reference)->Run({x});
      ASSERT_TRUE(y.ok()) << y.status();
      serial.push_back((*y)[0].data);
    }
  }
  RunConcurrently([&](const Tensor& x) { return (*executor)->Run({x}); },
                  inputs, serial);
  EXPECT_EQ((*executor)->cached_shapes(), 2);
}

// x [N, 1, H, W] -> Pad by `pad` on each spatial side -> y.
graph::Graph PadGraph(int64_t h, int64_t pad) {
  graph::Graph g;
  g.inputs.push_back({"x", {graph::kBatch, 1, h, h}});
  graph::Attributes attrs;
  attrs.pads = {0, 0, pad, pad, 0, 0, pad, pad};
  g.nodes.push_back({"pad", graph::Op::kPad, {"x"}, {"y"}, attrs});
  g.outputs.push_back({"y", {}});
  return g;
}

TEST(PlanBudgetTest, HugePadIsResourceExhaustedNamingTheNode) {
  // 100004 x 100004 floats: 40 GB, past the shape limit of 2^31 elements
  // (and the default 4 GiB arena), refused before anything is allocated.
  auto executor = Executor::Create(PadGraph(4, 50000));
  ASSERT_EQ(executor.status().code(), absl::StatusCode::kResourceExhausted)
      << executor.status();
  EXPECT_THAT(executor.status().message(),
              AllOf(HasSubstr("node 'pad' (Pad)"), HasSubstr("100004")));
}

TEST(PlanBudgetTest, HugeBatchIsResourceExhaustedAndSmallerOnesStillRun) {
  ExecutorOptions options;
  options.budget.max_arena_bytes = 1 << 20;
  auto executor = Executor::Create(demo::LoadDemoModel("lenet"), options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  Tensor big;
  big.shape = {4096, 1, 28, 28};
  big.data.assign(big.size(), 0.5f);
  auto y = (*executor)->Run({big});
  ASSERT_EQ(y.status().code(), absl::StatusCode::kResourceExhausted)
      << y.status();
  EXPECT_THAT(y.status().message(), HasSubstr("1048576"));
  EXPECT_THAT(y.status().message(), HasSubstr("[4096,1,28,28]"));
  Tensor small;
  small.shape = {2, 1, 28, 28};
  small.data.assign(small.size(), 0.5f);
  EXPECT_TRUE((*executor)->Run({small}).ok());
}

TEST(PlanBudgetTest, PlanLimitCountsOutputsAndWeights) {
  ExecutorOptions options;
  options.budget.max_plan_bytes = 64
                                  << 10;  // LeNet's weights alone are larger.
  auto executor = Executor::Create(demo::LoadDemoModel("lenet"), options);
  ASSERT_EQ(executor.status().code(), absl::StatusCode::kResourceExhausted)
      << executor.status();
  EXPECT_THAT(executor.status().message(),
              AllOf(HasSubstr("plan for input shapes"), HasSubstr("65536")));
}

TEST(PlanBudgetTest, EsbExecutorPassesTheBudgetsOn) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  EsbExecutorOptions options;
  options.budget.max_arena_bytes = 1 << 10;
  auto executor =
      EsbExecutor::Create(g,
                          demo::DemoLayers(g, demo::MakeFormat(4, 2, true),
                                           demo::MakeFormat(4, 2, false)),
                          options);
  ASSERT_EQ(executor.status().code(), absl::StatusCode::kResourceExhausted)
      << executor.status();
  EXPECT_THAT(executor.status().message(), HasSubstr("1024"));
}

}  // namespace
}  // namespace esb::runtime
