// The number of CPUs this process may use: the default OpenMP thread count
// of the executors.
//
//   AvailableCpus = max(1, min(affinity, quota))
//
// affinity: CPUs in the process's sched_getaffinity mask (the machine's
//           count when the call fails);
// quota:    the cgroup CPU bandwidth limit, ceil(quota / period), from
//           <cgroup_root>/cpu.max (cgroup v2: "max 100000" or
//           "150000 100000") or, without it, cgroup v1's
//           <cgroup_root>/cpu/cpu.cfs_quota_us and cpu.cfs_period_us
//           (quota -1: none). No limit when the files are absent or do not
//           parse. Inside a container the process's cgroup is mounted at
//           /sys/fs/cgroup, which is what the default root reads.
//
// Functions are thread-safe.
#ifndef ESB_CORE_RUNTIME_CPUS_H_
#define ESB_CORE_RUNTIME_CPUS_H_

#include <cstdint>
#include <optional>
#include <string>

namespace esb::runtime {

// CPUs allowed by the cgroup CPU quota under `cgroup_root`, rounded up;
// nullopt when there is no quota (or it cannot be read).
std::optional<int> CgroupCpuLimit(const std::string& cgroup_root);

// CPUs in the calling thread's affinity mask (at least 1).
int AffinityCpus();

// min(AffinityCpus(), CgroupCpuLimit(cgroup_root)), at least 1.
int AvailableCpus(const std::string& cgroup_root = "/sys/fs/cgroup");

// Bytes of the highest-level data or unified cache of a CPU, from its sysfs
// directory (index*/level, type and size, e.g. "32768K"); nullopt when none
// can be read.
std::optional<int64_t> LastLevelCacheBytes(
    const std::string& cache_dir = "/sys/devices/system/cpu/cpu0/cache");

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_CPUS_H_
