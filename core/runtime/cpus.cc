#include "core/runtime/cpus.h"

#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace esb::runtime {
namespace {

// The first line of `path`, or nullopt.
std::optional<std::string> FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

// ceil(quota / period), or nullopt for no limit or unusable numbers.
std::optional<int> CpusOf(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  return static_cast<int>(std::max<int64_t>(1, (quota + period - 1) / period));
}

}  // namespace

std::optional<int> CgroupCpuLimit(const std::string& cgroup_root) {
  // cgroup v2: "<quota|max> <period>".
  if (std::optional<std::string> line = FirstLine(cgroup_root + "/cpu.max")) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(*line, ' ', absl::SkipWhitespace());
    int64_t quota = 0, period = 0;
    if (fields.size() != 2 || fields[0] == "max" ||
        !absl::SimpleAtoi(fields[0], &quota) ||
        !absl::SimpleAtoi(fields[1], &period)) {
      return std::nullopt;
    }
    return CpusOf(quota, period);
  }
  // cgroup v1: quota -1 means none.
  std::optional<std::string> quota_line =
      FirstLine(cgroup_root + "/cpu/cpu.cfs_quota_us");
  std::optional<std::string> period_line =
      FirstLine(cgroup_root + "/cpu/cpu.cfs_period_us");
  int64_t quota = 0, period = 0;
  if (!quota_line || !period_line || !absl::SimpleAtoi(*quota_line, &quota) ||
      !absl::SimpleAtoi(*period_line, &period)) {
    return std::nullopt;
  }
  return CpusOf(quota, period);
}

int AffinityCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    return std::max(1, CPU_COUNT(&set));
  }
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int AvailableCpus(const std::string& cgroup_root) {
  int cpus = AffinityCpus();
  if (std::optional<int> limit = CgroupCpuLimit(cgroup_root)) {
    cpus = std::min(cpus, *limit);
  }
  return std::max(1, cpus);
}

std::optional<int64_t> LastLevelCacheBytes(const std::string& cache_dir) {
  std::error_code error;
  std::filesystem::directory_iterator it(cache_dir, error);
  if (error) return std::nullopt;
  int best_level = 0;
  std::optional<int64_t> best;
  for (const std::filesystem::directory_entry& entry : it) {
    const std::string dir = entry.path().string();
    if (entry.path().filename().string().rfind("index", 0) != 0) continue;
    std::optional<std::string> level_line = FirstLine(dir + "/level");
    std::optional<std::string> type = FirstLine(dir + "/type");
    std::optional<std::string> size_line = FirstLine(dir + "/size");
    int level = 0;
    if (!level_line || !type || !size_line ||
        !absl::SimpleAtoi(*level_line, &level) || *type == "Instruction") {
      continue;
    }
    // "32768K", "2M" or plain bytes.
    absl::string_view size = absl::StripAsciiWhitespace(*size_line);
    int64_t unit = 1;
    if (!size.empty() && (size.back() == 'K' || size.back() == 'M')) {
      unit = size.back() == 'K' ? int64_t{1} << 10 : int64_t{1} << 20;
      size.remove_suffix(1);
    }
    int64_t value = 0;
    if (!absl::SimpleAtoi(size, &value) || value <= 0) continue;
    if (level > best_level) {
      best_level = level;
      best = value * unit;
    }
  }
  return best;
}

}  // namespace esb::runtime
