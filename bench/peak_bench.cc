// The machine's FP32 FMA and int8 VNNI compute peaks, on one thread and on
// one thread per CPU (see bench/peak.h for what is run and how it counts).
//
//   build/bench/esb_peak_bench [--seconds=1] [--threads=0]
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/peak.h"

ABSL_FLAG(double, seconds, 1.0, "Timed seconds per test, after a warm-up.");
ABSL_FLAG(int, threads, 0,
          "Threads of the multi-thread run; 0 for one per CPU this process "
          "may use.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Measures the FP32 FMA and int8 VNNI compute peaks.\n"
      "  esb_peak_bench [--seconds=1] [--threads=0]");
  absl::ParseCommandLine(argc, argv);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  int threads = absl::GetFlag(FLAGS_threads);
  if (seconds <= 0.0 || threads < 0) {
    std::fprintf(stderr,
                 "esb_peak_bench: --seconds must be > 0 and "
                 "--threads >= 0\n");
    return 2;
  }
  if (threads == 0) threads = esb::bench::AvailableCpus();

  std::vector<esb::bench::Peaks> runs = {esb::bench::MeasurePeaks(1, seconds)};
  if (threads > 1) runs.push_back(esb::bench::MeasurePeaks(threads, seconds));

  std::printf("%s\n", runs.front().isa.c_str());
  std::printf(
      "FP32: 2 flops per FMA lane; int8: 2 ops per u8 x s8 "
      "multiply-accumulate.\n\n");
  std::printf("%7s | %12s %10s | %12s %10s | %9s | %9s\n", "threads",
              "FP32 GFLOP/s", "per thread", "int8 GOP/s", "per thread",
              "int8/FP32", "CPU share");
  for (const esb::bench::Peaks& p : runs) {
    if (p.int8_gops > 0.0) {
      std::printf("%7d | %12.1f %10.1f | %12.1f %10.1f | %9.2f | %8.0f%%\n",
                  p.threads, p.fp32_gflops, p.fp32_gflops / p.threads,
                  p.int8_gops, p.int8_gops / p.threads,
                  p.int8_gops / p.fp32_gflops, 100.0 * p.cpu_share);
    } else {
      std::printf("%7d | %12.1f %10.1f | %12s %10s | %9s | %8.0f%%\n",
                  p.threads, p.fp32_gflops, p.fp32_gflops / p.threads, "n/a",
                  "n/a", "n/a", 100.0 * p.cpu_share);
    }
  }
  for (const esb::bench::Peaks& p : runs) {
    if (p.cpu_share < 0.95) {
      std::printf(
          "\nwarning: with %d thread(s), a thread was on a CPU only %.0f%% "
          "of the time: other processes are running, so these figures are "
          "below the machine's peak.\n",
          p.threads, 100.0 * p.cpu_share);
    }
  }
  if (runs.size() > 1) {
    const esb::bench::Peaks& one = runs.front();
    const esb::bench::Peaks& all = runs.back();
    std::printf("\n%d threads vs 1: FP32 x%.2f", all.threads,
                all.fp32_gflops / one.fp32_gflops);
    if (one.int8_gops > 0.0) {
      std::printf(", int8 x%.2f", all.int8_gops / one.int8_gops);
    }
    std::printf("\n");
  }
  return 0;
}
