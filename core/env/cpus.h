// How many CPUs this process may use: the default thread count of every
// executor, so a job in a container limited to 2 CPUs runs 2 threads, not
// one per core of the host.
//
// Functions are thread-safe.
#ifndef ESB_CORE_ENV_CPUS_H_
#define ESB_CORE_ENV_CPUS_H_

#include <string>

namespace esb {

// The smaller of the CPUs in this process's affinity mask
// (sched_getaffinity) and its cgroup's CPU quota, rounded up (cgroup v2
// `cpu.max` "QUOTA PERIOD", or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`,
// of the process's own cgroup under `cgroup_root`). At least 1.
int AvailableCpus(const std::string& cgroup_root = "/sys/fs/cgroup");

// The quota alone, from the text of a cgroup v2 cpu.max file: "max ..."
// or an unparsable text give 0 (no limit); otherwise ceil(quota / period).
int CpusFromCpuMax(const std::string& text);

}  // namespace esb

#endif  // ESB_CORE_ENV_CPUS_H_
