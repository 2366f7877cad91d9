// Benchmarks of the ESB quantizer and of DDA.
//
//   build/bench/esb_core_bench [--benchmark_filter=...]
//
// Quantization is compared with memcpy of the same bytes (the physical
// reference: a quantizer reads and writes as much as a copy); DDA `mse`
// per-channel is timed on a 3x3x256x256 conv weight and on ResNet-18's
// 11.7 M weights (its real layer shapes, Gaussian values). One thread.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <vector>

#include "core/esb/dda.h"
#include "core/esb/format.h"
#include "core/esb/quantize.h"

namespace {

std::vector<float> Gaussian(size_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> out(n);
  for (float& x : out) x = normal(rng);
  return out;
}

constexpr size_t kValues = 1 << 22;  // 16 MiB of floats: beyond L2.

void BM_Memcpy(benchmark::State& state) {
  const std::vector<float> in = Gaussian(kValues, 1.0f, 1);
  std::vector<float> out(kValues);
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), kValues * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kValues * sizeof(float));
  state.SetItemsProcessed(state.iterations() * kValues);
}
BENCHMARK(BM_Memcpy);

void Quantize(benchmark::State& state, bool reference) {
  const esb::Format f =
      *esb::Format::Create(state.range(0), state.range(1), true);
  const std::vector<float> in = Gaussian(kValues, 1.0f, 2);
  std::vector<float> out(kValues);
  for (auto _ : state) {
    if (reference) {
      esb::QuantizeReference(f, 0.5f, in.data(), out.data(), kValues);
    } else {
      esb::QuantizeKernel(f, 0.5f, in.data(), out.data(), kValues);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kValues * sizeof(float));
  state.SetItemsProcessed(state.iterations() * kValues);
}

void BM_QuantizeKernel(benchmark::State& state) { Quantize(state, false); }
void BM_QuantizeReference(benchmark::State& state) { Quantize(state, true); }
BENCHMARK(BM_QuantizeKernel)->Args({4, 2})->Args({8, 4})->Args({8, 7});
BENCHMARK(BM_QuantizeReference)->Args({4, 2});

void FitLayers(benchmark::State& state,
               const std::vector<std::vector<int64_t>>& shapes) {
  const esb::Format f = *esb::Format::Create(4, 2, true);
  std::vector<std::vector<float>> weights;
  int64_t total = 0;
  uint32_t seed = 0;
  for (const auto& shape : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    weights.push_back(Gaussian(n, 0.05f, ++seed));
    total += n;
  }
  esb::DdaOptions options;
  options.mode = esb::DdaMode::kMse;
  for (auto _ : state) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      auto fits = esb::FitPerChannel(f, weights[i], shapes[i], 0, options);
      benchmark::DoNotOptimize(fits);
    }
  }
  state.SetItemsProcessed(state.iterations() * total);
  state.counters["weights"] = static_cast<double>(total);
}

void BM_DdaMsePerChannel_256x256x3x3(benchmark::State& state) {
  FitLayers(state, {{256, 256, 3, 3}});
}
BENCHMARK(BM_DdaMsePerChannel_256x256x3x3)->Unit(benchmark::kMillisecond);

// ResNet-18's weight tensors (torchvision layout), 11,678,912 values.
std::vector<std::vector<int64_t>> ResNet18Shapes() {
  std::vector<std::vector<int64_t>> s = {{64, 3, 7, 7}};
  for (int i = 0; i < 4; ++i) s.push_back({64, 64, 3, 3});
  const int64_t widths[] = {128, 256, 512};
  int64_t in = 64;
  for (int64_t w : widths) {
    s.push_back({w, in, 3, 3});
    s.push_back({w, in, 1, 1});
    for (int i = 0; i < 3; ++i) s.push_back({w, w, 3, 3});
    in = w;
  }
  s.push_back({1000, 512});
  return s;
}

void BM_DdaMsePerChannel_ResNet18(benchmark::State& state) {
  FitLayers(state, ResNet18Shapes());
}
BENCHMARK(BM_DdaMsePerChannel_ResNet18)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

// Console output plus a record of each run for the ratio lines.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;
      const auto bytes = run.counters.find("bytes_per_second");
      if (bytes != run.counters.end()) {
        bytes_per_second[run.benchmark_name()] = bytes->second.value;
      }
      seconds[run.benchmark_name()] =
          run.GetAdjustedRealTime() /
          benchmark::GetTimeUnitMultiplier(run.time_unit);
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> bytes_per_second;
  std::map<std::string, double> seconds;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto& bps = reporter.bytes_per_second;
  std::cout << "\nvector kernels: "
            << (esb::HasVectorKernels() ? "AVX2" : "none (scalar)") << "\n";
  if (bps.count("BM_Memcpy")) {
    const double copy = bps.at("BM_Memcpy");
    std::cout << "memcpy: " << copy / 1e9 << " GB/s\n";
    for (const auto& [name, value] : bps) {
      if (name.rfind("BM_Quantize", 0) != 0) continue;
      std::cout << name << ": " << value / 1e9
                << " GB/s = " << 100.0 * value / copy
                << " % of memcpy (target >= 40 %)\n";
    }
  }
  const auto resnet = reporter.seconds.find(
      "BM_DdaMsePerChannel_ResNet18/"
      "iterations:2");
  if (resnet != reporter.seconds.end()) {
    std::cout << "DDA mse per-channel on ResNet-18's 11.7 M weights: "
              << resnet->second << " s on one core (target < 2 s)\n";
  }
  benchmark::Shutdown();
  return 0;
}
