#include "core/runtime/cpu_paths.h"

#include <sys/utsname.h>

#include <iostream>
#include <string>

#include "core/esb/quantize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace esb::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

uint32_t Bits(dnnl::cpu_isa isa) { return static_cast<uint32_t>(isa); }

TEST(CpuPathsTest, VnniOnX86TakesTheInt8FastPath) {
  for (dnnl::cpu_isa isa :
       {dnnl::cpu_isa::avx512_core_vnni, dnnl::cpu_isa::avx512_core_bf16,
        dnnl::cpu_isa::avx512_core_amx, dnnl::cpu_isa::avx2_vnni}) {
    const CpuPaths p = CpuPathsFor("x86_64", Bits(isa), true);
    EXPECT_THAT(p.no_int8_reason, IsEmpty()) << p.dnnl_isa;
    EXPECT_FALSE(p.int16_pairs) << p.dnnl_isa;
  }
  const CpuPaths p =
      CpuPathsFor("x86_64", Bits(dnnl::cpu_isa::avx512_core_vnni), true);
  EXPECT_EQ(DescribeCpuPaths(p),
            "cpu x86_64: oneDNN ISA avx512_core_vnni; ESB layers on the int8 "
            "fast path (oneDNN native int8); quantizer AVX2");
}

TEST(CpuPathsTest, X86WithoutVnniSumsPairsInInt16) {
  for (dnnl::cpu_isa isa : {dnnl::cpu_isa::avx2, dnnl::cpu_isa::avx512_core,
                            dnnl::cpu_isa::sse41}) {
    const CpuPaths p = CpuPathsFor("x86_64", Bits(isa), true);
    EXPECT_THAT(p.no_int8_reason, IsEmpty()) << p.dnnl_isa;
    EXPECT_TRUE(p.int16_pairs) << p.dnnl_isa;
  }
  const CpuPaths avx2 = CpuPathsFor("x86_64", Bits(dnnl::cpu_isa::avx2), true);
  EXPECT_EQ(DescribeCpuPaths(avx2),
            "cpu x86_64: oneDNN ISA avx2; ESB layers on the int8 fast path "
            "where pairs of products fit int16 (no VNNI), else the exact f32 "
            "path; quantizer AVX2");
}

TEST(CpuPathsTest, Arm64TakesTheReferencePathAndScalarQuantizer) {
  // The Cortex-A53: oneDNN's aarch64 value for asimd.
  const CpuPaths p = CpuPathsFor("aarch64", 0x1, false);
  EXPECT_EQ(DescribeCpuPaths(p),
            "cpu aarch64: oneDNN ISA asimd; ESB layers on the exact f32 path "
            "(oneDNN has no native int8 kernels for this CPU); quantizer "
            "scalar");
  // SVE has oneDNN int8 kernels, but none checked exact.
  const CpuPaths sve = CpuPathsFor("aarch64", 0x1f, false);
  EXPECT_EQ(sve.dnnl_isa, "sve_512");
  EXPECT_THAT(sve.no_int8_reason, HasSubstr("x86-64 VNNI only"));
}

TEST(CpuPathsTest, UnknownIsaIsPrintedInHex) {
  EXPECT_EQ(CpuPathsFor("x86_64", 0x12345, false).dnnl_isa, "0x12345");
}

// The line of the machine the test runs on (under qemu-aarch64 for the
// arm64 build): its architecture, oneDNN's own answer, the quantizer's.
TEST(CpuPathsTest, ThisMachineIsDescribedAsItRuns) {
  absl::StatusOr<CpuPaths> p = DetectCpuPaths();
  ASSERT_TRUE(p.ok()) << p.status();
  utsname name{};
  ASSERT_EQ(uname(&name), 0);
  EXPECT_EQ(p->arch, std::string{name.machine});
  EXPECT_EQ(p->vector_quantize, HasVectorKernels());
  const uint32_t isa = Bits(dnnl::get_effective_cpu_isa());
  EXPECT_EQ(DescribeCpuPaths(*p),
            DescribeCpuPaths(CpuPathsFor(p->arch, isa, HasVectorKernels())));
  EXPECT_EQ(CpuPathsLine(), DescribeCpuPaths(*p));
#if defined(__aarch64__)
  // "asimd" on the board's Cortex-A53 (scripts/cross_arm64.sh checks that
  // under qemu's model of it); ESB layers on the exact f32 path anywhere.
  EXPECT_THAT(p->dnnl_isa, ::testing::AnyOf(::testing::Eq("asimd"),
                                            ::testing::StartsWith("sve_")));
  EXPECT_THAT(p->no_int8_reason, ::testing::Not(IsEmpty()));
  EXPECT_FALSE(p->int16_pairs);
  EXPECT_FALSE(p->vector_quantize);
#endif
  std::cout << CpuPathsLine() << "\n";
}

}  // namespace
}  // namespace esb::runtime
