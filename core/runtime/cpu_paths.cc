#include "core/runtime/cpu_paths.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/esb/quantize.h"
#include "core/runtime/dnnl_adapter.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace esb::runtime {
namespace {

#if defined(__x86_64__)
constexpr absl::string_view kArch = "x86_64";
#elif defined(__aarch64__)
constexpr absl::string_view kArch = "aarch64";
#else
constexpr absl::string_view kArch = "unknown";
#endif

// oneDNN's name of an ISA its query returns on `arch`. On aarch64 oneDNN
// answers with its own values in the same enum (src/cpu/aarch64/
// cpu_isa_traits.hpp): asimd 0x1, then SVE of 128 to 512 bits.
std::string IsaName(absl::string_view arch, uint32_t isa) {
  if (arch == "aarch64") {
    switch (isa) {
      case 0x1:
        return "asimd";
      case 0x3:
        return "sve_128";
      case 0x7:
        return "sve_256";
      case 0xf:
        return "sve_384";
      case 0x1f:
        return "sve_512";
      default:
        return absl::StrCat("0x", absl::Hex(isa));
    }
  }
  struct Named {
    dnnl::cpu_isa isa;
    const char* name;
  };
  static constexpr Named kNames[] = {
      {dnnl::cpu_isa::all, "default"},
      {dnnl::cpu_isa::sse41, "sse41"},
      {dnnl::cpu_isa::avx, "avx"},
      {dnnl::cpu_isa::avx2, "avx2"},
      {dnnl::cpu_isa::avx2_vnni, "avx2_vnni"},
      {dnnl::cpu_isa::avx512_mic, "avx512_mic"},
      {dnnl::cpu_isa::avx512_mic_4ops, "avx512_mic_4ops"},
      {dnnl::cpu_isa::avx512_core, "avx512_core"},
      {dnnl::cpu_isa::avx512_core_vnni, "avx512_core_vnni"},
      {dnnl::cpu_isa::avx512_core_bf16, "avx512_core_bf16"},
      {dnnl::cpu_isa::avx512_core_amx, "avx512_core_amx"},
  };
  for (const Named& n : kNames) {
    if (static_cast<uint32_t>(n.isa) == isa) return n.name;
  }
  return absl::StrCat("0x", absl::Hex(isa));
}

}  // namespace

bool IsaHas(uint32_t isa, dnnl::cpu_isa want) {
  const auto bits = static_cast<uint32_t>(want);
  return (isa & bits) == bits;
}

bool Avx2WithoutAvx512() {
  static const bool avx2_only = [] {
    const auto isa = static_cast<uint32_t>(dnnl::get_effective_cpu_isa());
    return IsaHas(isa, dnnl::cpu_isa::avx2) &&
           !IsaHas(isa, dnnl::cpu_isa::avx512_core);
  }();
  return avx2_only;
}

CpuPaths CpuPathsFor(absl::string_view arch, uint32_t dnnl_isa,
                     bool vector_quantize) {
  CpuPaths paths;
  paths.arch = std::string{arch};
  paths.dnnl_isa = IsaName(arch, dnnl_isa);
  paths.vector_quantize = vector_quantize;
  if (arch == "aarch64" && dnnl_isa == 0x1) {
    // Debian's arm64 oneDNN JITs int8 for SVE-512 only; asimd gets its
    // reference loops.
    paths.no_int8_reason = "oneDNN has no native int8 kernels for this CPU";
  } else if (arch != "x86_64") {
    paths.no_int8_reason = "the int8 fast path is exact on x86-64 VNNI only";
  } else if (!IsaHas(dnnl_isa, dnnl::cpu_isa::avx512_core_vnni) &&
             !IsaHas(dnnl_isa, dnnl::cpu_isa::avx2_vnni)) {
    paths.int16_pairs = true;
  }
  return paths;
}

absl::StatusOr<CpuPaths> DetectCpuPaths() {
  dnnl::cpu_isa isa = dnnl::cpu_isa::all;
  absl::Status status = CallDnnl("querying the CPU", [&] {
    isa = dnnl::get_effective_cpu_isa();
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return CpuPathsFor(kArch, static_cast<uint32_t>(isa), HasVectorKernels());
}

std::string DescribeCpuPaths(const CpuPaths& paths) {
  return absl::StrCat(
      "cpu ", paths.arch, ": oneDNN ISA ", paths.dnnl_isa, "; ESB layers ",
      !paths.no_int8_reason.empty()
          ? absl::StrCat("on the exact f32 path (", paths.no_int8_reason, ")")
      : paths.int16_pairs
          ? std::string{"on the int8 fast path where pairs of products fit "
                        "int16 (no VNNI), else the exact f32 path"}
          : std::string{"on the int8 fast path (oneDNN native int8)"},
      "; quantizer ", paths.vector_quantize ? "AVX2" : "scalar");
}

std::string CpuPathsLine() {
  absl::StatusOr<CpuPaths> paths = DetectCpuPaths();
  if (!paths.ok()) {
    return absl::StrCat("cpu ", kArch, ": ", paths.status().message());
  }
  return DescribeCpuPaths(*paths);
}

}  // namespace esb::runtime
