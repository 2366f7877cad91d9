#include "core/env/cpus.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace esb {
namespace {

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int CeilDiv(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<int>(
      std::min<int64_t>((quota + period - 1) / period, 1 << 20));
}

// The process's cgroup path ("/" at the root): the v2 line "0::/path".
std::string OwnCgroup() {
  std::istringstream lines(ReadSmallFile("/proc/self/cgroup"));
  std::string line;
  while (std::getline(lines, line)) {
    if (absl::StartsWith(line, "0::")) return line.substr(3);
  }
  return "/";
}

}  // namespace

int CpusFromCpuMax(const std::string& text) {
  std::vector<std::string> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty());
  int64_t quota = 0, period = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &quota) ||
      !absl::SimpleAtoi(parts[1], &period)) {
    return 0;  // "max 100000": no limit.
  }
  return CeilDiv(quota, period);
}

int AvailableCpus(const std::string& cgroup_root) {
  int cpus = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  int quota = 0;
  const std::string own = OwnCgroup();
  for (const std::string& dir : {cgroup_root + own, cgroup_root}) {
    quota = CpusFromCpuMax(ReadSmallFile(dir + "/cpu.max"));
    if (quota > 0) break;
  }
  if (quota == 0) {  // cgroup v1.
    int64_t q = 0, p = 0;
    const std::string v1 = cgroup_root + "/cpu";
    if (absl::SimpleAtoi(
            absl::StripAsciiWhitespace(ReadSmallFile(v1 + "/cpu.cfs_quota_us")),
            &q) &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(
                             ReadSmallFile(v1 + "/cpu.cfs_period_us")),
                         &p)) {
      quota = CeilDiv(q, p);
    }
  }
  if (quota > 0) cpus = std::min(cpus, quota);
  return std::max(cpus, 1);
}

}  // namespace esb
