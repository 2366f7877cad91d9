// Test helpers: what EsbExecutor reports on this CPU for layers that fit
// the int8 fast path (the int8 path with VNNI, else the exact f32 path).
#ifndef ESB_CORE_RUNTIME_ESB_PATHS_TESTING_H_
#define ESB_CORE_RUNTIME_ESB_PATHS_TESTING_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/runtime/cpu_paths.h"

namespace esb::runtime {

// "" when this CPU takes the int8 fast path, else why not (CpuPaths).
inline std::string NoInt8Here() {
  absl::StatusOr<CpuPaths> paths = DetectCpuPaths();
  return paths.ok() ? paths->no_int8_reason : paths.status().ToString();
}

// The description of kAuto for layers `names` whose formats fit int8,
// all on this CPU's fast path. `split`: the K split clause, or "".
inline std::string FastHere(const std::vector<std::string>& names,
                            const std::string& split = "") {
  const std::string reason = NoInt8Here();
  const size_t n = names.size();
  if (reason.empty()) {
    return absl::StrCat("int8 fast path on ", n, " of ", n, " layers", split);
  }
  return absl::StrCat("exact f32 path on ", n, " of ", n,
                      n == 1 ? " layer" : " layers", split, ": ", reason,
                      n == 1 ? " (layer '" : " (layers '",
                      absl::StrJoin(names, "', '"), "')");
}

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_ESB_PATHS_TESTING_H_
