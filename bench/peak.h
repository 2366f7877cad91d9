// The machine's compute peak, measured: what the FP32 FMA and int8 dot
// product units deliver when nothing but them runs, so other benchmarks can
// print their figures as a fraction of it.
//
// Each thread runs 12 independent accumulator chains (enough to hide a 4-6
// cycle latency on two pipes), each iteration issuing one instruction per
// chain:
//   FP32  acc = fma(acc, x, y)          2 flops per lane: 16 lanes in a zmm
//         register (AVX-512F), 8 in a ymm register (AVX2 + FMA);
//   int8  acc = vpdpbusd(acc, a, b)     each 32-bit lane adds four u8 x s8
//         products: 64 multiply-accumulates per zmm register (AVX-512 VNNI),
//         32 per ymm register (AVX-VNNI), counted as 2 ops each, i.e. 128 and
//         64 ops per instruction.
// The widest instruction set the CPU supports is chosen at run time. Without
// FMA, FP32 falls back to plain multiply and add; without VNNI, no int8
// figure is given.
//
// Threads are started together, pinned one per CPU the process may run on (a
// single thread is left to the scheduler), warmed up (AVX-512 clocks settle)
// and then timed; the total is the sum of the per-thread rates. Each thread's
// CPU time is compared with the wall time to tell a busy machine from a slow
// one.
//
// MeasurePeaks is thread-safe, but concurrent calls measure each other.
#ifndef ESB_BENCH_PEAK_H_
#define ESB_BENCH_PEAK_H_

#include <string>

namespace esb::bench {

struct Peaks {
  double fp32_gflops = 0.0;  // Sum over the threads, in 1e9 flop/s.
  double int8_gops = 0.0;    // Sum over the threads, in 1e9 op/s; 0 when the
                             // CPU has no VNNI.
  int threads = 0;           // Threads that ran.
  std::string isa;           // The instructions used, e.g. "FP32: AVX-512F
                             // vfmadd (zmm); int8: AVX-512 VNNI ...".
  // The smallest share of the timed wall time one thread spent on a CPU.
  // Well below 1, other processes competed for the CPUs and the figures are
  // low: they measure a busy machine, not its peak.
  double cpu_share = 1.0;
};

// Measures with `threads` threads (< 1: one per CPU this process may use),
// timing each of the two tests for `seconds_per_test` after a warm-up of up to
// 0.2 s.
Peaks MeasurePeaks(int threads, double seconds_per_test);

// How many CPUs this process may run on (its affinity mask), at least 1.
int AvailableCpus();

}  // namespace esb::bench

#endif  // ESB_BENCH_PEAK_H_
