// The accelerator model's own speed, and the modelled figures of the array,
// on packages (model.esbm) given on the command line:
//
//   esb_accel_bench [--images 200] [--batch 50] MODEL.esbm...
//
// For each package, in one run: the CPU ESB executor (the baseline) and
// the model runner on the in-process accelerator model over the same
// Fashion-MNIST test images, both timed on the host; whether their outputs
// are bit-identical; the PE array model's simulated MACs per second; and,
// labelled modelled, the array's cycles, latency and energy per image at
// its configured clock. Nothing here is a board measurement.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "core/accel/model_device.h"
#include "core/accel/runner.h"
#include "core/data/dataset.h"
#include "core/env/env.h"
#include "core/package/esbm.h"
#include "core/runtime/esb_executor.h"

ABSL_FLAG(int, images, 200, "test images per package");
ABSL_FLAG(int, batch, 50, "images per run");
ABSL_FLAG(std::string, data,
          "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
          "images (IDX, .npy, image folder or tar) fitting the models' input");

namespace esb {
namespace {

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int Bench(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(Env::Default(), path);
  auto package = bytes.ok() ? pipeline::ParsePackage(*bytes)
                            : absl::StatusOr<esb::v1::Package>(bytes.status());
  if (!package.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(),
                 std::string{package.status().message()}.c_str());
    return 1;
  }
  auto model = pipeline::UnpackPackage(*package);
  if (!model.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(),
                 std::string{model.status().message()}.c_str());
    return 1;
  }
  const graph::ValueInfo& input = model->graph.inputs.at(0);
  data::ImageGeometry geometry{input.name, input.shape[1], input.shape[2],
                               input.shape[3]};
  data::DatasetOptions options;
  options.limit = absl::GetFlag(FLAGS_images);
  auto images = data::Dataset::Open(absl::GetFlag(FLAGS_data), geometry,
                                    model->normalization, options);
  if (!images.ok()) {
    std::fprintf(stderr, "%s\n",
                 std::string{images.status().message()}.c_str());
    return 1;
  }
  const int64_t count = (*images)->count();
  const int batch = absl::GetFlag(FLAGS_batch);
  auto cpu = runtime::EsbExecutor::Create(model->graph, model->layers, {},
                                          &model->weight_integers);
  accel::ArrayConfig array;
  accel::ModelDevice device(array, int64_t{256} << 20);
  accel::RunnerOptions runner_options;
  runner_options.max_batch = batch;
  auto runner = accel::ModelRunner::Create(*model, &device, runner_options);
  if (!cpu.ok() || !runner.ok()) {
    std::fprintf(stderr, "%s: %s%s\n", path.c_str(),
                 std::string{cpu.status().message()}.c_str(),
                 std::string{runner.status().message()}.c_str());
    return 1;
  }
  double cpu_seconds = 0;
  double model_seconds = 0;
  int64_t differing = 0;
  accel::Cost cost;
  for (int64_t start = 0; start < count; start += batch) {
    const int64_t n = std::min<int64_t>(batch, count - start);
    auto pixels = (*images)->ImageRange(start, n);
    if (!pixels.ok()) return 1;
    graph::Tensor x{{n, geometry.channels, geometry.height, geometry.width},
                    *std::move(pixels)};
    double t0 = Now();
    auto want = (*cpu)->Run({x});
    double t1 = Now();
    accel::RunStats stats;
    auto got = (*runner)->Run({x}, &stats);
    double t2 = Now();
    if (!want.ok() || !got.ok()) {
      std::fprintf(stderr, "run failed: %s %s\n",
                   std::string{want.status().message()}.c_str(),
                   std::string{got.status().message()}.c_str());
      return 1;
    }
    cpu_seconds += t1 - t0;
    model_seconds += t2 - t1;
    cost += stats.cost;
    differing += want->front().data != got->front().data;
  }
  const double per_image = 1.0 / static_cast<double>(count);
  std::printf("%s (%lld images, batch %d)\n", path.c_str(),
              static_cast<long long>(count), batch);  // NOLINT(runtime/int)
  std::printf("  placement: %s\n", (*runner)->Description().c_str());
  std::printf("  bit-identical to the CPU ESB executor: %s\n",
              differing == 0 ? "yes" : "NO");
  std::printf(
      "  host time per image: CPU ESB executor %.3f ms, accelerator "
      "model %.3f ms (ratio %.1fx)\n",
      cpu_seconds * per_image * 1e3, model_seconds * per_image * 1e3,
      model_seconds / cpu_seconds);
  std::printf(
      "  accelerator model speed: %.1f M simulated MACs/s, %.1f M "
      "shift-adds/s\n",
      static_cast<double>(cost.macs) / model_seconds / 1e6,
      static_cast<double>(cost.shift_adds) / model_seconds / 1e6);
  std::printf(
      "  modelled on %s: %.0f cycles/image, %.1f us/image, %.0f "
      "images/s, %.2f uJ/image (modelled, not measured)\n",
      accel::Describe(array).c_str(),
      static_cast<double>(cost.cycles) * per_image,
      accel::Seconds(cost.cycles, array) * per_image * 1e6,
      1.0 / (accel::Seconds(cost.cycles, array) * per_image),
      accel::EnergyJoules(cost, array) * per_image * 1e6);
  const accel::Resources r = accel::EstimateResources(array);
  std::printf(
      "  modelled resources: %lld LUTs, %lld FFs, %lld BRAM36, %lld "
      "DSP (fits ZCU102: %s)\n",
      static_cast<long long>(r.luts),        // NOLINT(runtime/int)
      static_cast<long long>(r.flip_flops),  // NOLINT(runtime/int)
      static_cast<long long>(r.bram36),      // NOLINT(runtime/int)
      static_cast<long long>(r.dsp),         // NOLINT(runtime/int)
      r.fits_zcu102 ? "yes" : "no");
  return differing == 0 ? 0 : 1;
}

}  // namespace
}  // namespace esb

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "esb_accel_bench [--images N] [--batch B] MODEL.esbm...");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    std::fprintf(stderr, "usage: esb_accel_bench MODEL.esbm...\n");
    return 2;
  }
  int failed = 0;
  for (size_t i = 1; i < args.size(); ++i) failed |= esb::Bench(args[i]);
  return failed;
}
