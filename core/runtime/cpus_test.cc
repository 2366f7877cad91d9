#include "core/runtime/cpus.h"

#include <sched.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

class CpusTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(testing::TempDir()) /
            testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "cpu");
  }
  void Write(const std::string& file, const std::string& text) {
    std::ofstream(root_ / file) << text;
  }
  std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

TEST_F(CpusTest, V2QuotaRoundsUp) {
  Write("cpu.max", "150000 100000\n");
  EXPECT_EQ(CgroupCpuLimit(root()), 2);
  Write("cpu.max", "100000 100000\n");
  EXPECT_EQ(CgroupCpuLimit(root()), 1);
  Write("cpu.max", "20000 100000\n");  // A fifth of a CPU still gets one.
  EXPECT_EQ(CgroupCpuLimit(root()), 1);
}

TEST_F(CpusTest, V2MaxOrGarbageIsNoLimit) {
  Write("cpu.max", "max 100000\n");
  EXPECT_EQ(CgroupCpuLimit(root()), std::nullopt);
  Write("cpu.max", "lots\n");
  EXPECT_EQ(CgroupCpuLimit(root()), std::nullopt);
  Write("cpu.max", "100000 0\n");
  EXPECT_EQ(CgroupCpuLimit(root()), std::nullopt);
}

TEST_F(CpusTest, V1QuotaWhenNoV2File) {
  EXPECT_EQ(CgroupCpuLimit(root()), std::nullopt);
  Write("cpu/cpu.cfs_quota_us", "300000\n");
  Write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(CgroupCpuLimit(root()), 3);
  Write("cpu/cpu.cfs_quota_us", "-1\n");
  EXPECT_EQ(CgroupCpuLimit(root()), std::nullopt);
}

TEST_F(CpusTest, AvailableIsTheSmallerOfAffinityAndQuota) {
  const int affinity = AffinityCpus();
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(affinity, CPU_COUNT(&set));
  EXPECT_EQ(AvailableCpus(root()), affinity);  // No quota files.
  Write("cpu.max", "100000 100000\n");
  EXPECT_EQ(AvailableCpus(root()), 1);
  Write("cpu.max", "100000000 100000\n");  // 1000 CPUs: affinity wins.
  EXPECT_EQ(AvailableCpus(root()), affinity);
}

TEST_F(CpusTest, LastLevelCacheIsTheHighestDataOrUnifiedLevel) {
  EXPECT_EQ(LastLevelCacheBytes(root() + "/absent"), std::nullopt);
  auto cache = [&](const std::string& index, const std::string& level,
                   const std::string& type, const std::string& size) {
    std::filesystem::create_directories(std::filesystem::path(root()) /
                                        "cache" / index);
    Write("cache/" + index + "/level", level + "\n");
    Write("cache/" + index + "/type", type + "\n");
    Write("cache/" + index + "/size", size + "\n");
  };
  cache("index0", "1", "Data", "32K");
  cache("index1", "1", "Instruction", "32K");
  EXPECT_EQ(LastLevelCacheBytes(root() + "/cache"), int64_t{32} << 10);
  cache("index2", "2", "Unified", "1024K");
  cache("index3", "3", "Unified", "32768K");
  EXPECT_EQ(LastLevelCacheBytes(root() + "/cache"), int64_t{32} << 20);
  cache("index4", "4", "Instruction", "64M");  // Not data: ignored.
  cache("index5", "5", "Unified", "lots");     // Does not parse: ignored.
  EXPECT_EQ(LastLevelCacheBytes(root() + "/cache"), int64_t{32} << 20);
  cache("index6", "4", "Unified", "2M");
  EXPECT_EQ(LastLevelCacheBytes(root() + "/cache"), int64_t{2} << 20);
}

}  // namespace
}  // namespace esb::runtime
