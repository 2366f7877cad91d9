#include "core/runtime/dnnl_adapter.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace esb::runtime {

absl::Status CallDnnl(absl::string_view context,
                      absl::FunctionRef<absl::Status()> fn) {
  try {
    return fn();
  } catch (const dnnl::error& e) {
    std::string message = absl::StrCat(context, ": oneDNN: ", e.what());
    switch (e.status) {
      case dnnl_unimplemented:
        return absl::UnimplementedError(message);
      case dnnl_out_of_memory:
        return absl::ResourceExhaustedError(message);
      default:
        return absl::InternalError(message);
    }
  }
}

dnnl::memory::dims PlainStrides(absl::Span<const int64_t> shape) {
  dnnl::memory::dims strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) {
    strides[i - 1] = strides[i] * shape[i];
  }
  return strides;
}

dnnl::memory::desc PlainDesc(absl::Span<const int64_t> shape) {
  if (shape.empty()) {
    return dnnl::memory::desc({1}, dnnl::memory::data_type::f32, {1});
  }
  return dnnl::memory::desc(dnnl::memory::dims(shape.begin(), shape.end()),
                            dnnl::memory::data_type::f32, PlainStrides(shape));
}

absl::StatusOr<AlignedBuffer> AlignedBuffer::Allocate(size_t bytes,
                                                      absl::string_view what) {
  constexpr size_t kAlign = 64;
  if (bytes > std::numeric_limits<size_t>::max() - kAlign) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", what, ": ", bytes, " bytes"));
  }
  const size_t rounded =
      bytes == 0 ? kAlign : (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", what, ": out of memory for ", bytes, " bytes"));
  }
  std::memset(p, 0, rounded);
  return AlignedBuffer(bytes, static_cast<float*>(p));
}

void AlignedBuffer::Free::operator()(float* p) const { std::free(p); }

}  // namespace esb::runtime
