// Products of few rows with large constant weights (classifier heads at
// batch 1): the executor's NarrowGemm loop (core/runtime/loop_kernels.h)
// against oneDNN's matmul with weights packed in the layout it picks (what
// the executor runs otherwise), in the same run.
//
//   build/bench/esb_narrow_gemm_bench [--rows=1,2,3,4] [--runs=20]
//       [--cold=true] [--threads=2]
//
// For each shape K x N (AlexNet's and VGG's FC layers, a ResNet-50 and an
// EfficientNet head, and ResNet-18's, below the executor's 4 MiB threshold)
// and row count: the minimum over `runs` of each kernel's time, the weight
// bytes per second that makes, and oneDNN / NarrowGemm (above 1: NarrowGemm
// is faster). With --cold, a 512 MiB buffer is written between runs so that
// the weights come from memory, as they do in a model whose weights exceed
// the caches. Exit 0; 1 for a oneDNN or allocation error, 2 for bad flags.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/graph/graph.h"
#include "core/runtime/loop_kernels.h"
#include "oneapi/dnnl/dnnl.hpp"

ABSL_FLAG(std::string, rows, "1,2,3,4", "Row counts, comma separated.");
ABSL_FLAG(int, runs, 20, "Timed runs per kernel, shape and row count.");
ABSL_FLAG(bool, cold, true, "Evict the caches before each run.");
ABSL_FLAG(int, threads, 2, "OpenMP threads.");

namespace {

using Clock = std::chrono::steady_clock;
using dnnl::memory;

std::vector<float> Random(int64_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(size));
  for (float& x : v) x = dist(rng);
  return v;
}

// Writes a buffer larger than any cache of this machine.
class Evictor {
 public:
  explicit Evictor(bool on) : buffer_(on ? (size_t{512} << 20) : 0) {}
  void operator()() {
    if (buffer_.empty()) return;
    ++pass_;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < buffer_.size(); i += 64) {
      buffer_[i] = static_cast<char>(pass_ + i);
    }
  }

 private:
  std::vector<char> buffer_;
  int pass_ = 0;
};

// The time of one run of `run`, in seconds, after evicting.
template <typename Run>
double Seconds(Evictor& evict, const Run& run) {
  evict();
  const Clock::time_point start = Clock::now();
  run();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Shape {
  const char* what;
  int64_t k, n;
};

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "NarrowGemm against oneDNN's matmul on few rows and large weights.\n"
      "  esb_narrow_gemm_bench [--rows=1,2,3,4] [--runs=20] [--cold=true]");
  absl::ParseCommandLine(argc, argv);
  std::vector<int64_t> row_counts;
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_rows), ',')) {
    int64_t r = 0;
    if (!absl::SimpleAtoi(s, &r) || r < 1 || r > 1024) {
      std::fprintf(stderr, "--rows: '%.*s' is not a count in [1, 1024]\n",
                   static_cast<int>(s.size()), s.data());
      return 2;
    }
    row_counts.push_back(r);
  }
  const int runs = absl::GetFlag(FLAGS_runs);
  const int threads = absl::GetFlag(FLAGS_threads);
  if (runs < 1 || threads < 1) {
    std::fprintf(stderr, "--runs and --threads must be at least 1\n");
    return 2;
  }
  omp_set_num_threads(threads);

  const std::vector<Shape> shapes = {
      {"alexnet fc6", 9216, 4096}, {"vgg fc6", 25088, 4096},
      {"alexnet fc7", 4096, 4096}, {"alexnet fc8", 4096, 1000},
      {"resnet50 fc", 2048, 1000}, {"efficientnet fc", 1280, 1000},
      {"resnet18 fc", 512, 1000},
  };
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  Evictor evict(absl::GetFlag(FLAGS_cold));
  std::printf("%s caches, %d threads, minimum of %d runs\n",
              absl::GetFlag(FLAGS_cold) ? "cold" : "warm", threads, runs);
  std::printf("%-16s %6s %6s %4s %9s %9s %8s %8s %7s\n", "shape", "K", "N",
              "rows", "onednn_ms", "narrow_ms", "dnnl_GBs", "narr_GBs",
              "ratio");
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    const std::vector<float> w_kn = Random(s.k * s.n, ++seed);  // [K, N].
    std::vector<float> w_nk(w_kn.size());  // NarrowGemm's [N, K].
    for (int64_t i = 0; i < s.k; ++i) {
      for (int64_t j = 0; j < s.n; ++j) w_nk[j * s.k + i] = w_kn[i * s.n + j];
    }
    const std::vector<float> bias = Random(s.n, ++seed);
    const double weight_bytes = static_cast<double>(w_kn.size()) * 4.0;
    for (int64_t rows : row_counts) {
      const std::vector<float> x = Random(rows * s.k, ++seed);
      std::vector<float> y(static_cast<size_t>(rows * s.n));

      const memory::desc x_desc({rows, s.k}, memory::data_type::f32,
                                memory::format_tag::ab);
      const memory::desc w_any({s.k, s.n}, memory::data_type::f32,
                               memory::format_tag::any);
      const memory::desc b_desc({1, s.n}, memory::data_type::f32,
                                memory::format_tag::ab);
      const memory::desc y_desc({rows, s.n}, memory::data_type::f32,
                                memory::format_tag::ab);
      const dnnl::matmul::primitive_desc pd(
          dnnl::matmul::desc(x_desc, w_any, b_desc, y_desc), engine);
      memory plain_w(
          {{s.k, s.n}, memory::data_type::f32, memory::format_tag::ab}, engine,
          const_cast<float*>(w_kn.data()));
      memory packed_w(pd.weights_desc(), engine);
      dnnl::reorder(plain_w, packed_w).execute(stream, plain_w, packed_w);
      memory x_mem(x_desc, engine, const_cast<float*>(x.data()));
      memory b_mem(b_desc, engine, const_cast<float*>(bias.data()));
      memory y_mem(y_desc, engine, y.data());
      const dnnl::matmul matmul(pd);
      const auto run_dnnl = [&] {
        matmul.execute(stream, {{DNNL_ARG_SRC, x_mem},
                                {DNNL_ARG_WEIGHTS, packed_w},
                                {DNNL_ARG_BIAS, b_mem},
                                {DNNL_ARG_DST, y_mem}});
        stream.wait();
      };
      const auto run_narrow = [&] {
        esb::runtime::NarrowGemm(x.data(), rows, s.k, w_nk.data(), s.n,
                                 bias.data(), esb::graph::Activation{},
                                 y.data());
      };
      run_dnnl();  // Warm-up: primitive and thread pool.
      run_narrow();
      // Alternate the two so that both see the same machine state.
      double dnnl_s = 1e30, narrow_s = 1e30;
      for (int i = 0; i < runs; ++i) {
        dnnl_s = std::min(dnnl_s, Seconds(evict, run_dnnl));
        narrow_s = std::min(narrow_s, Seconds(evict, run_narrow));
      }
      std::printf("%-16s %6lld %6lld %4lld %9.3f %9.3f %8.1f %8.1f %6.2fx\n",
                  s.what, static_cast<long long>(s.k),
                  static_cast<long long>(s.n), static_cast<long long>(rows),
                  dnnl_s * 1e3, narrow_s * 1e3, weight_bytes / dnnl_s / 1e9,
                  weight_bytes / narrow_s / 1e9, dnnl_s / narrow_s);
      std::fflush(stdout);
    }
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {  // dnnl::error, std::bad_alloc.
    std::fprintf(stderr, "esb_narrow_gemm_bench: %s\n", e.what());
    return 1;
  }
}
