// The oneDNN adapter: the one place where oneDNN's exceptions meet the
// project's Status, plus the small memory-descriptor helpers the runtime
// shares.
//
// Every call into oneDNN that may throw (descriptor and primitive creation,
// execution, memory creation) runs inside CallDnnl, so no dnnl::error escapes
// core/runtime. dnnl_unimplemented becomes UNIMPLEMENTED, out-of-memory
// RESOURCE_EXHAUSTED, anything else INTERNAL; the message starts with the
// caller's context (typically "node 'conv1' (Conv)").
//
// Functions are thread-safe.
#ifndef ESB_CORE_RUNTIME_DNNL_ADAPTER_H_
#define ESB_CORE_RUNTIME_DNNL_ADAPTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace esb::runtime {

// Runs `fn`; a dnnl::error it throws becomes a Status prefixed by `context`.
absl::Status CallDnnl(absl::string_view context,
                      absl::FunctionRef<absl::Status()> fn);

// The row-major ("plain") f32 layout of `shape`. A scalar (rank 0) is
// described as [1]: oneDNN has no rank-0 memory.
dnnl::memory::desc PlainDesc(absl::Span<const int64_t> shape);

// Row-major strides of `shape` in elements.
dnnl::memory::dims PlainStrides(absl::Span<const int64_t> shape);

// 64-byte aligned float storage of a fixed size, zero-initialised. Movable,
// not copyable.
class AlignedBuffer {
 public:
  // `bytes` of storage (at least 64 are reserved, so data() is never null).
  // RESOURCE_EXHAUSTED naming `what` (e.g. "the activation arena") and the
  // size when the size overflows or the allocation fails.
  static absl::StatusOr<AlignedBuffer> Allocate(size_t bytes,
                                                absl::string_view what);

  float* data() const { return data_.get(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  AlignedBuffer(size_t bytes, float* data) : bytes_(bytes), data_(data) {}

  size_t bytes_;
  std::unique_ptr<float, Free> data_;
};

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_DNNL_ADAPTER_H_
