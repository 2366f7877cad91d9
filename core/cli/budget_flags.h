// --max-arena-bytes and --max-plan-bytes: the executor's memory budget
// (runtime::MemoryBudget) as esbctl and esb-agent take it, defined once.
#ifndef ESB_CORE_CLI_BUDGET_FLAGS_H_
#define ESB_CORE_CLI_BUDGET_FLAGS_H_

#include "absl/status/statusor.h"
#include "core/runtime/executor.h"

namespace esb::cli {

// The budget the two flags give (K, M, G, T suffixes; defaults those of
// runtime::MemoryBudget). INVALID_ARGUMENT naming the flag when a size
// does not parse or is 0.
absl::StatusOr<runtime::MemoryBudget> MemoryBudgetFromFlags();

}  // namespace esb::cli

#endif  // ESB_CORE_CLI_BUDGET_FLAGS_H_
