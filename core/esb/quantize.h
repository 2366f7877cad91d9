// Quantization of float tensors onto an ESB grid with scale alpha:
//
//   out[i] = alpha * Round(in[i] / alpha)
//
// with Round the reference rounding of Format::Round (nearest level, ties to
// even, clipped to the format's range). The kernels here are bit-identical
// to that definition; NaN inputs produce the canonical quiet NaN
// (kCanonicalNanBits) and are counted, and the caller-facing Quantize()
// refuses them.
//
// All functions are thread-safe (they touch only their arguments).
#ifndef ESB_CORE_ESB_QUANTIZE_H_
#define ESB_CORE_ESB_QUANTIZE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/esb/format.h"

namespace esb {

// OK when alpha is finite and > 0; INVALID_ARGUMENT naming it otherwise.
absl::Status ValidateScale(float alpha);

// Scalar reference. `out` may alias `in`. Returns the number of NaN inputs.
size_t QuantizeReference(const Format& format, float alpha, const float* in,
                         float* out, size_t n);

// Vectorised kernel: AVX2 on an x86-64 CPU that has it, the reference
// everywhere else (arm64 included). Bit-identical to QuantizeReference.
// Returns the number of NaN inputs.
size_t QuantizeKernel(const Format& format, float alpha, const float* in,
                      float* out, size_t n);

// The levels themselves, out[i] = Round(in[i] / alpha) in units of alpha
// (canonical NaN for NaN): what the integer views are made from. The kernel
// is bit-identical to the reference. Return the number of NaN inputs.
size_t RoundReference(const Format& format, float alpha, const float* in,
                      float* out, size_t n);
size_t RoundKernel(const Format& format, float alpha, const float* in,
                   float* out, size_t n);

// Caller-facing: validates alpha and sizes, quantizes, and returns
// INVALID_ARGUMENT naming the first NaN's index if any input is NaN.
absl::Status Quantize(const Format& format, float alpha,
                      absl::Span<const float> in, absl::Span<float> out);

// Error of quantizing `in` with scale alpha, without storing the result.
struct ErrorSums {
  double squared_error = 0;  // sum (x - Q(x))^2.
  int64_t clipped = 0;       // Values with |x / alpha| > c.
};

// The sum is accumulated in double in a fixed lane order, so the vectorised
// and scalar paths return identical sums. NaN inputs must be excluded by the
// caller (they make the sum NaN).
ErrorSums QuantizationError(const Format& format, float alpha, const float* in,
                            size_t n);
ErrorSums QuantizationErrorReference(const Format& format, float alpha,
                                     const float* in, size_t n);

// True when the vectorised kernels run on this CPU (an x86-64 CPU with
// AVX2); false where the kernels are the reference loops.
bool HasVectorKernels();

}  // namespace esb

#endif  // ESB_CORE_ESB_QUANTIZE_H_
