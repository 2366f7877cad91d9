// Inference throughput of the CPU runtime, next to the machine's peaks.
//
//   build/bench/esb_runtime_bench [--benchmark_filter=...] MODEL.onnx...
//
// For every model, at batch 1 and 64: FP32 and ESB-int8 (W4A4 sb 2, scales
// calibrated on random inputs: a speed figure) images/s, the GOP/s that
// makes (2 ops per MAC of its Conv/Gemm/MatMul layers) as a fraction of the
// FP32 FMA and int8 VNNI peaks measured by bench/peak.h in the same run, and
// the int8/FP32 ratio. bench/run.sh passes the demo models and a
// ResNet-18-shaped model at 224x224.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bench/peak.h"
#include "core/graph/passes.h"
#include "core/graph/shapes.h"
#include "core/onnx/onnx_import.h"
#include "core/pipeline/calibrate.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/executor.h"

namespace {

using esb::graph::Graph;
using esb::graph::Op;
using esb::graph::Tensor;

// Multiply-accumulates of one image.
int64_t MacsPerImage(const Graph& g) {
  std::map<std::string, std::vector<int64_t>> inputs;
  for (const auto& in : g.inputs) {
    std::vector<int64_t> s = in.shape;
    if (!s.empty() && s[0] == esb::graph::kBatch) s[0] = 1;
    inputs[in.name] = s;
  }
  auto shapes = esb::graph::InferShapes(g, inputs);
  if (!shapes.ok()) return 0;
  int64_t macs = 0;
  for (const auto& n : g.nodes) {
    if (!esb::graph::IsQuantizedOp(n.op)) continue;
    const auto& out = shapes->at(n.outputs[0]);
    int64_t out_elems = 1;
    for (int64_t d : out) out_elems *= d;
    macs +=
        out_elems * esb::graph::MacsPerOutput(n, g.constants.at(n.inputs[1]));
  }
  return macs;
}

struct Model {
  std::string name;
  Graph graph;
  int64_t macs = 0;
  std::map<std::string, esb::LayerQuant> layers;  // W4A4 sb 2.
};

Tensor RandomInput(const Model& m, int batch, uint32_t seed) {
  std::vector<int64_t> shape = m.graph.inputs[0].shape;
  shape[0] = batch;
  Tensor t{shape, {}};
  t.data.resize(t.size());
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (float& v : t.data) v = normal(rng);
  return t;
}

// Times `run` on one random batch; `state` reports images/s and GOP/s.
template <typename Engine>
void Time(benchmark::State& state, const Model* model, Engine& engine,
          int batch) {
  const Tensor input = RandomInput(*model, batch, 1);
  if (!engine.Run({input}).ok()) {  // Builds the plan.
    state.SkipWithError("run failed");
    return;
  }
  for (auto _ : state) {
    auto out = engine.Run({input});
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch),
                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GOP/s"] =
      benchmark::Counter(2.0 * model->macs * batch / 1e9,
                         benchmark::Counter::kIsIterationInvariantRate);
}

void RunEsb(benchmark::State& state, const Model* model, int batch) {
  auto executor =
      esb::runtime::EsbExecutor::Create(model->graph, model->layers, {});
  if (!executor.ok()) {
    state.SkipWithError(std::string(executor.status().message()).c_str());
    return;
  }
  state.SetLabel((*executor)->Description());
  Time(state, model, **executor, batch);
}

std::map<std::string, double> g_images_per_second;

void RunFp32(benchmark::State& state, const Model* model, int batch) {
  auto executor = esb::runtime::Executor::Create(model->graph, {});
  if (!executor.ok()) {
    state.SkipWithError(std::string(executor.status().message()).c_str());
    return;
  }
  Time(state, model, **executor, batch);
}

class Recorder : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      auto it = r.counters.find("images/s");
      if (it != r.counters.end()) {
        g_images_per_second[r.benchmark_name()] = it->second.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::vector<Model> models;
  for (int i = 1; i < argc; ++i) {
    auto g = esb::graph::ImportOnnxFile(argv[i]);
    if (!g.ok()) {
      std::cerr << g.status().message() << "\n";
      return 1;
    }
    esb::graph::Optimize(*g);
    Model m;
    m.name = std::filesystem::path(argv[i]).stem().string();
    m.macs = MacsPerImage(*g);
    m.graph = *std::move(g);
    int calls = 0;
    auto source = [&]() -> std::vector<Tensor> {
      if (calls == 2) return {};
      return {RandomInput(m, 16, static_cast<uint32_t>(100 + calls++))};
    };
    auto layers = esb::pipeline::Calibrate(m.graph, source, {});
    if (!layers.ok()) {
      std::cerr << argv[i] << ": " << layers.status().message() << "\n";
      return 1;
    }
    m.layers = *std::move(layers);
    models.push_back(std::move(m));
  }
  if (models.empty()) {
    std::cerr << "usage: esb_runtime_bench [benchmark flags] MODEL.onnx...\n";
    return 2;
  }
  for (const Model& m : models) {
    for (int batch : {1, 64}) {
      benchmark::RegisterBenchmark(
          ("fp32/" + m.name + "/batch:" + std::to_string(batch)).c_str(),
          [&m, batch](benchmark::State& s) { RunFp32(s, &m, batch); })
          ->UseRealTime()
          ->MinTime(2.0)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(
          ("esb/" + m.name + "/batch:" + std::to_string(batch)).c_str(),
          [&m, batch](benchmark::State& s) { RunEsb(s, &m, batch); })
          ->UseRealTime()
          ->MinTime(2.0)
          ->Unit(benchmark::kMillisecond);
    }
  }
  const esb::bench::Peaks peaks = esb::bench::MeasurePeaks(0, 1.0);
  Recorder recorder;
  benchmark::RunSpecifiedBenchmarks(&recorder);

  std::printf(
      "\nmachine peaks (%d threads, %s): FP32 %.1f GFLOP/s, int8 %.1f "
      "GOP/s%s\n",
      peaks.threads, peaks.isa.c_str(), peaks.fp32_gflops, peaks.int8_gops,
      peaks.cpu_share < 0.95 ? " (busy machine: low figures)" : "");
  std::printf("%-16s %12s %9s %11s %12s %9s %11s %10s\n", "model/batch",
              "FP32 img/s", "GFLOP/s", "% FP32 pk", "int8 img/s", "GOP/s",
              "% int8 pk", "int8/FP32");
  for (const Model& m : models) {
    for (int batch : {1, 64}) {
      const std::string suffix = "/" + m.name +
                                 "/batch:" + std::to_string(batch) +
                                 "/min_time:2.000/real_time";
      auto fp = g_images_per_second.find("fp32" + suffix);
      auto q = g_images_per_second.find("esb" + suffix);
      if (fp == g_images_per_second.end() || q == g_images_per_second.end()) {
        continue;
      }
      const double fp_ops = fp->second * 2.0 * m.macs / 1e9;
      const double q_ops = q->second * 2.0 * m.macs / 1e9;
      std::printf("%-16s %12.1f %9.1f %10.1f%% %12.1f %9.1f %10.1f%% %9.2fx\n",
                  (m.name + "/" + std::to_string(batch)).c_str(), fp->second,
                  fp_ops, 100.0 * fp_ops / peaks.fp32_gflops, q->second, q_ops,
                  100.0 * q_ops / peaks.int8_gops, q->second / fp->second);
    }
  }
  benchmark::Shutdown();
  return 0;
}
