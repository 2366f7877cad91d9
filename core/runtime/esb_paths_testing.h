// Test helpers: what EsbExecutor reports on this CPU for layers whose
// formats fit int8 (the int8 path with VNNI; without it, the int8 path
// for unsigned inputs whose pairs of products fit int16, else the exact
// f32 path).
#ifndef ESB_CORE_RUNTIME_ESB_PATHS_TESTING_H_
#define ESB_CORE_RUNTIME_ESB_PATHS_TESTING_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/esb/format.h"
#include "core/runtime/cpu_paths.h"
#include "core/runtime/esb_layers.h"

namespace esb::runtime {

// Why no layer takes the int8 fast path on this CPU, whatever its formats
// (CpuPaths::no_int8_reason), or "".
inline std::string NoInt8Here() {
  absl::StatusOr<CpuPaths> paths = DetectCpuPaths();
  return paths.ok() ? paths->no_int8_reason : paths.status().ToString();
}

// Why a layer with input format `in` and weight format `weights`, both
// fitting int8, does not take the int8 fast path on this CPU, or "".
// `matmul`: the layer is an unsplit Gemm or MatMul.
inline std::string NotInt8Here(const Format& in, const Format& weights,
                               bool matmul) {
  absl::StatusOr<CpuPaths> paths = DetectCpuPaths();
  if (!paths.ok()) return paths.status().ToString();
  if (!paths->no_int8_reason.empty()) return paths->no_int8_reason;
  return paths->int16_pairs ? internal::Int16PairReason(in, weights, matmul)
                            : "";
}

// The description of kAuto for layers `names`, all with formats `in` and
// `weights` that fit int8, and all matmuls or none (NotInt8Here). `split`:
// the K split clause, or "".
inline std::string FastHere(const std::vector<std::string>& names,
                            const Format& in, const Format& weights,
                            bool matmul, const std::string& split = "") {
  const std::string reason = NotInt8Here(in, weights, matmul);
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
