// The code paths this CPU takes, in one line for the agent's log and
// `esbctl board`:
//
//   arch      the architecture the binary was built for (x86_64, aarch64);
//   isa       oneDNN's effective ISA (dnnl::get_effective_cpu_isa) by its
//             oneDNN name: "avx512_core_vnni", "avx2", ... on x86-64;
//             "asimd" (NEON), "sve_512", ... on aarch64;
//   int8      whether EsbExecutor's int8 fast path may run here, and for
//             which layers. On x86-64 VNNI (AVX512-VNNI, AVX-VNNI)
//             oneDNN's u8/s8 x s8 -> s32 kernels sum in 32 bits, so every
//             layer whose formats fit int8 may take it; without VNNI they
//             add pairs of products in saturating int16, so only layers
//             with an unsigned input whose pairs stay within int16 may
//             (int16_pairs, esb_layers.h). The board's Cortex-A53 (asimd) gets
//             no native int8 kernels from Debian's oneDNN (its arm64 build JITs
//             int8 for SVE-512 only), and other CPUs have no exactness check:
//             ESB layers run the exact f32 path there (integers in f32,
//             esb_layers.h);
//   quantize  the quantizer's kernels (core/esb/quantize.h): AVX2, or the
//             scalar reference loops.
//
// Thread-safe.
#ifndef ESB_CORE_RUNTIME_CPU_PATHS_H_
#define ESB_CORE_RUNTIME_CPU_PATHS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace esb::runtime {

struct CpuPaths {
  std::string arch;
  std::string dnnl_isa;
  // "" when EsbExecutor may take the int8 fast path; else why it may not.
  std::string no_int8_reason;
  // oneDNN's int8 kernels here sum pairs of u8 x s8 products in saturating
  // int16 (x86-64 without VNNI): the int8 path then runs only the layers
  // whose pairs cannot saturate (esb_layers.h).
  bool int16_pairs = false;
  bool vector_quantize = false;
};

// Whether oneDNN ISA bits `isa` (a dnnl_cpu_isa_t value) include all of
// `want`'s.
bool IsaHas(uint32_t isa, dnnl::cpu_isa want);

// Whether this CPU has AVX2 but not AVX-512, where some of oneDNN 2.6's
// kernels lose to plain loops that they beat or match with AVX-512
// (lower.cc says which).
bool Avx2WithoutAvx512();

// The paths for a CPU of architecture `arch` whose oneDNN effective ISA is
// `dnnl_isa` (a dnnl_cpu_isa_t value) and whose quantizer kernels are
// vectorised or not.
CpuPaths CpuPathsFor(absl::string_view arch, uint32_t dnnl_isa,
                     bool vector_quantize);

// This CPU's paths. An error only when oneDNN's query fails.
absl::StatusOr<CpuPaths> DetectCpuPaths();

// "cpu aarch64: oneDNN ISA asimd; ESB layers on the exact f32 path (oneDNN
// has no native int8 kernels for this CPU); quantizer scalar", or on AVX2
// "...; ESB layers on the int8 fast path where pairs of products fit int16
// (no VNNI), else the exact f32 path; ...".
std::string DescribeCpuPaths(const CpuPaths& paths);

// DescribeCpuPaths(DetectCpuPaths()), or the query's error in that place.
std::string CpuPathsLine();

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_CPU_PATHS_H_
