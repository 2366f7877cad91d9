#include "core/env/cpus.h"

#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace esb {
namespace {

TEST(CpusTest, ParsesCpuMax) {
  EXPECT_EQ(CpusFromCpuMax("max 100000\n"), 0);
  EXPECT_EQ(CpusFromCpuMax("200000 100000\n"), 2);
  EXPECT_EQ(CpusFromCpuMax("150000 100000"), 2);  // 1.5 CPUs: 2 threads.
  EXPECT_EQ(CpusFromCpuMax("50000 100000"), 1);
  EXPECT_EQ(CpusFromCpuMax("garbage"), 0);
  EXPECT_EQ(CpusFromCpuMax(""), 0);
}

TEST(CpusTest, AQuotaBelowTheAffinityWins) {
  const std::string root =
      absl::StrCat(::testing::TempDir(), "/cgroup_", ::getpid());
  std::filesystem::create_directories(root);
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const int affinity = CPU_COUNT(&set);
  // No quota files: the affinity mask.
  EXPECT_EQ(AvailableCpus(root), affinity);
  // A quota of one CPU at the root of the fake tree.
  std::ofstream(root + "/cpu.max") << "100000 100000\n";
  EXPECT_EQ(AvailableCpus(root), 1);
  // A quota above the affinity leaves the affinity.
  std::ofstream(root + "/cpu.max") << "6400000 100000\n";
  EXPECT_EQ(AvailableCpus(root), affinity);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace esb
