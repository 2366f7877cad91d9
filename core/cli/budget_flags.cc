#include "core/cli/budget_flags.h"

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "core/cli/flags.h"

ABSL_FLAG(std::string, max_arena_bytes,
          esb::cli::FormatByteSize(static_cast<int64_t>(
              esb::runtime::MemoryBudget().max_arena_bytes)),
          "Executor budget: bytes of one run's intermediate values (K, M, G, "
          "T suffixes); a model or batch that needs more is refused.");
ABSL_FLAG(std::string, max_plan_bytes,
          esb::cli::FormatByteSize(static_cast<int64_t>(
              esb::runtime::MemoryBudget().max_plan_bytes)),
          "Executor budget: bytes of one plan (its intermediate values, "
          "outputs and packed weights); more is refused.");

namespace esb::cli {

absl::StatusOr<runtime::MemoryBudget> MemoryBudgetFromFlags() {
  runtime::MemoryBudget budget;
  const struct {
    const char* flag;
    std::string text;
    size_t* bytes;
  } sizes[] = {
      {"--max-arena-bytes", absl::GetFlag(FLAGS_max_arena_bytes),
       &budget.max_arena_bytes},
      {"--max-plan-bytes", absl::GetFlag(FLAGS_max_plan_bytes),
       &budget.max_plan_bytes},
  };
  for (const auto& size : sizes) {
    absl::StatusOr<int64_t> bytes = ParsePositiveByteSize(size.flag, size.text);
    if (!bytes.ok()) return bytes.status();
    *size.bytes = static_cast<size_t>(*bytes);
  }
  return budget;
}

}  // namespace esb::cli
