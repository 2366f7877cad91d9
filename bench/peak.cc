#include "bench/peak.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <latch>
#include <string>
#include <thread>
#include <vector>

namespace esb::bench {
namespace {

constexpr int kChains = 12;

// A kernel runs `iterations` iterations of kChains independent instructions
// and returns a value derived from every chain, so that none is optimised
// away.
using KernelFn = double (*)(int64_t iterations);

struct Kernel {
  const char* isa = nullptr;
  double ops_per_iteration = 0.0;
  KernelFn run = nullptr;
};

// acc converges to y / (1 - x) = 1: no overflow, no denormals.
constexpr float kX = 0.999999f;
constexpr float kY = 1e-6f;

// The vector kernels are x86-64's; other CPUs (arm64) measure the scalar
// FP32 loop and no int8 peak.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) double Fp32Avx512(int64_t iterations) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.01f * i);
  const __m512 x = _mm512_set1_ps(kX);
  const __m512 y = _mm512_set1_ps(kY);
  for (int64_t n = 0; n < iterations; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc[0]);
  return lanes[0];
}

__attribute__((target("avx2,fma"))) double Fp32Avx2(int64_t iterations) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.01f * i);
  const __m256 x = _mm256_set1_ps(kX);
  const __m256 y = _mm256_set1_ps(kY);
  for (int64_t n = 0; n < iterations; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  return lanes[0];
}

#endif  // defined(__x86_64__)

// Separate multiply and add: the baseline x86-64 target has no FMA.
double Fp32Scalar(int64_t iterations) {
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = 0.01f * i;
  for (int64_t n = 0; n < iterations; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * kX + kY;
  }
  float sum = 0.0f;
  for (float a : acc) sum += a;
  return sum;
}

#if defined(__x86_64__)
// GCC 12 surrounds each vpdpbusd with register copies (the instruction
// overwrites its accumulator); they cost nothing measurable on Zen 4, where
// this runs as fast as the same loop written in assembly.
__attribute__((target("avx512f,avx512vnni"))) double Int8Avx512Vnni(
    int64_t iterations) {
  __m512i acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3);   // Read as unsigned bytes.
  const __m512i b = _mm512_set1_epi8(-2);  // Read as signed bytes.
  for (int64_t n = 0; n < iterations; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) {
      acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    }
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, acc[0]);
  return lanes[0];
}

__attribute__((target("avx2,avxvnni"))) double Int8AvxVnni(int64_t iterations) {
  __m256i acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi8(3);
  const __m256i b = _mm256_set1_epi8(-2);
  for (int64_t n = 0; n < iterations; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) {
      acc[i] = _mm256_dpbusd_avx_epi32(acc[i], a, b);
    }
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm256_add_epi32(acc[0], acc[i]);
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0];
}

#endif  // defined(__x86_64__)

Kernel Fp32Kernel() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) {
    return {"AVX-512F vfmadd (zmm, 16 lanes)", kChains * 16 * 2.0, Fp32Avx512};
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return {"AVX2 vfmadd (ymm, 8 lanes)", kChains * 8 * 2.0, Fp32Avx2};
  }
#endif
  return {"scalar multiply + add (no FMA)", kChains * 2.0, Fp32Scalar};
}

#if defined(__x86_64__)
// CPUID leaf 7 sub-leaf 1, EAX bit 4. Read directly because Clang before 16
// does not know "avxvnni" in __builtin_cpu_supports; the OS's support for ymm
// state comes with the "avx2" check.
bool HasAvxVnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (eax >> 4) & 1u;
}

#endif  // defined(__x86_64__)

// {nullptr, ...} when the CPU has no VNNI.
Kernel Int8Kernel() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512vnni")) {
    return {"AVX-512 VNNI vpdpbusd (zmm, 64 MAC)", kChains * 64 * 2.0,
            Int8Avx512Vnni};
  }
  if (__builtin_cpu_supports("avx2") && HasAvxVnni()) {
    return {"AVX-VNNI vpdpbusd (ymm, 32 MAC)", kChains * 32 * 2.0, Int8AvxVnni};
  }
#endif
  return {};
}

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The CPUs this process may run on, in order.
std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

// Pins the calling thread to `cpu`; a failure only makes the figure noisier.
void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// CPU time the calling thread has used.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Rate {
  double ops_per_second = 0.0;
  double cpu_share = 1.0;  // Thread CPU time / wall time while timed.
};

// Warms `kernel` up, waits for every thread at `start`, then runs it for
// `seconds`. `sink` keeps the results alive.
Rate TimedRate(const Kernel& kernel, double seconds, std::latch& start,
               std::atomic<double>& sink) {
  double keep = 0.0;
  // Batches of about a millisecond keep the clock reads out of the figure.
  int64_t batch = 1024;
  const Clock::time_point warm_start = Clock::now();
  while (true) {
    const Clock::time_point t = Clock::now();
    keep += kernel.run(batch);
    if (Seconds(Clock::now() - t) >= 1e-3) break;
    batch *= 2;
  }
  const double warm_up = std::min(0.2, seconds);
  while (Seconds(Clock::now() - warm_start) < warm_up) {
    keep += kernel.run(batch);
  }

  start.arrive_and_wait();
  int64_t done = 0;
  const double cpu_begin = ThreadCpuSeconds();
  const Clock::time_point begin = Clock::now();
  double elapsed = 0.0;
  do {
    keep += kernel.run(batch);
    done += batch;
    elapsed = Seconds(Clock::now() - begin);
  } while (elapsed < seconds);
  const double cpu = ThreadCpuSeconds() - cpu_begin;
  sink.store(keep, std::memory_order_relaxed);
  return {static_cast<double>(done) * kernel.ops_per_iteration / elapsed,
          std::min(1.0, cpu / elapsed)};
}

// The summed rate of `threads` threads running `kernel`, and the smallest
// share of the time one of them was on a CPU.
Rate TotalRate(const Kernel& kernel, int threads, double seconds) {
  const std::vector<int> cpus = AllowedCpus();
  std::vector<Rate> rates(threads);
  std::latch start(threads);
  std::atomic<double> sink{0.0};
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      // One thread is left to the scheduler, which moves it off a busy CPU.
      if (threads > 1 && !cpus.empty()) PinTo(cpus[t % cpus.size()]);
      rates[t] = TimedRate(kernel, seconds, start, sink);
    });
  }
  Rate total;
  for (int t = 0; t < threads; ++t) {
    workers[t].join();
    total.ops_per_second += rates[t].ops_per_second;
    total.cpu_share = std::min(total.cpu_share, rates[t].cpu_share);
  }
  return total;
}

}  // namespace

int AvailableCpus() {
  const auto cpus = static_cast<int>(AllowedCpus().size());
  if (cpus > 0) return cpus;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

Peaks MeasurePeaks(int threads, double seconds_per_test) {
  Peaks peaks;
  peaks.threads = threads < 1 ? AvailableCpus() : threads;
  const Kernel fp32 = Fp32Kernel();
  const Kernel int8 = Int8Kernel();
  const Rate fp32_rate = TotalRate(fp32, peaks.threads, seconds_per_test);
  peaks.fp32_gflops = fp32_rate.ops_per_second / 1e9;
  peaks.cpu_share = fp32_rate.cpu_share;
  peaks.isa = std::string("FP32: ") + fp32.isa + "; int8: ";
  if (int8.run != nullptr) {
    const Rate int8_rate = TotalRate(int8, peaks.threads, seconds_per_test);
    peaks.int8_gops = int8_rate.ops_per_second / 1e9;
    peaks.cpu_share = std::min(peaks.cpu_share, int8_rate.cpu_share);
    peaks.isa += int8.isa;
  } else {
    peaks.isa += "unavailable (no AVX-512 VNNI or AVX-VNNI)";
  }
  return peaks;
}

}  // namespace esb::bench
