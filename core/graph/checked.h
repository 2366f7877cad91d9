// Overflow-checked int64 arithmetic for shape and size computations.
//
// Shapes come from model files and data headers, so every product or sum of
// dims may be hostile. These helpers return std::nullopt instead of wrapping
// (signed overflow is undefined behaviour in C++); callers turn that into a
// status naming the node or file.
//
// Functions are thread-safe.
#ifndef ESB_CORE_GRAPH_CHECKED_H_
#define ESB_CORE_GRAPH_CHECKED_H_

#include <cstdint>
#include <optional>

#include "absl/types/span.h"

namespace esb::graph {

// a * b, or nullopt when it does not fit an int64.
inline std::optional<int64_t> CheckedMul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// a + b, or nullopt when it does not fit an int64.
inline std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// a - b, or nullopt when it does not fit an int64.
inline std::optional<int64_t> CheckedSub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// The product of `dims` (1 for none), or nullopt when a dim is negative or
// the product does not fit an int64.
inline std::optional<int64_t> CheckedProduct(absl::Span<const int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return std::nullopt;
    std::optional<int64_t> next = CheckedMul(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

}  // namespace esb::graph

#endif  // ESB_CORE_GRAPH_CHECKED_H_
