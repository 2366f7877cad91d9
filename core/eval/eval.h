// Accuracy of a model on a labelled image set, shared by the quantization
// job and `esbctl eval`: items fed in batches, the first output collected,
// top-1 and the agreement of two models' predictions.
//
// Functions are thread-safe (they share nothing); `infer` is called from
// the calling thread only.
#ifndef ESB_CORE_EVAL_EVAL_H_
#define ESB_CORE_EVAL_EVAL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/graph/graph.h"

namespace esb::eval {

// One batch in, the model's first output out (dim 0 follows the batch).
using InferFn =
    std::function<absl::StatusOr<graph::Tensor>(const graph::Tensor&)>;

// The first output of `executor` (a runtime::Executor or EsbExecutor,
// which must outlive the function).
template <typename Executor>
InferFn FirstOutputOf(Executor& executor) {
  return
      [&executor](const graph::Tensor& batch) -> absl::StatusOr<graph::Tensor> {
        absl::StatusOr<std::vector<graph::Tensor>> out = executor.Run({batch});
        if (!out.ok()) return out.status();
        if (out->empty()) {
          return absl::InternalError("the model has no outputs");
        }
        return std::move(out->front());
      };
}

struct BatchOptions {
  // Items per call when the model's batch is free. At least 1.
  int64_t batch = 64;
  // > 0: the model takes exactly this many items a call; the last call is
  // padded with zeros and the padding's outputs dropped.
  int64_t fixed_batch = 0;
  // Called after each batch with the items done so far; may be empty.
  std::function<void(int64_t done)> on_progress;
  // Asked before each batch; true stops with CANCELLED. May be empty.
  std::function<bool()> cancelled;
};

// The first output of every item, row-major: count x per_item floats.
struct Outputs {
  std::vector<float> data;
  int64_t count = 0;
  int64_t per_item = 0;
};

// Items [start, start + n) of a set, one after another; asked for once per
// batch, so that a large set is never held whole.
using ItemSource =
    std::function<absl::StatusOr<std::vector<float>>(int64_t start, int64_t n)>;

// Feeds `count` items of shape `item_shape` (C x H x W), `source` giving
// them batch by batch, through `infer`. INVALID_ARGUMENT when a batch from
// `source` does not hold its items; `source`'s errors as they are;
// otherwise as the overload below.
absl::StatusOr<Outputs> RunBatches(const InferFn& infer,
                                   const ItemSource& source, int64_t count,
                                   const std::vector<int64_t>& item_shape,
                                   const BatchOptions& options);

// Feeds `count` items of shape `item_shape` (C x H x W), stored one after
// another in `items`, through `infer`. INVALID_ARGUMENT when `items` does
// not hold count items; INTERNAL when an output does not follow the batch
// dimension or changes size between batches; `infer`'s errors as they are.
absl::StatusOr<Outputs> RunBatches(const InferFn& infer,
                                   absl::Span<const float> items, int64_t count,
                                   const std::vector<int64_t>& item_shape,
                                   const BatchOptions& options);

// The index of each item's largest output (first on ties).
std::vector<int> Predictions(const Outputs& outputs);

// Fraction of items whose prediction equals its label; 0 for no items.
// The spans must have the same size. Labels are IDX bytes (uint8_t) or
// class indices of any count (int32_t).
// (Label is not deduced, so that {} and vectors convert: name int32_t.)
template <typename Label = uint8_t>
double Top1(absl::Span<const int> predicted,
            absl::Span<const std::type_identity_t<Label>> labels);
extern template double Top1<uint8_t>(absl::Span<const int>,
                                     absl::Span<const uint8_t>);
extern template double Top1<int32_t>(absl::Span<const int>,
                                     absl::Span<const int32_t>);

// Fraction of items on which two models predict the same class.
double Agreement(absl::Span<const int> a, absl::Span<const int> b);

// The labels of a labels file (data/labels.h: IDX labels or text with one
// integer per line; first `limit` with limit >= 0), which must number
// `count`. INVALID_ARGUMENT naming the file otherwise.
absl::StatusOr<std::vector<int32_t>> ReadLabels(const std::string& path,
                                                int64_t limit, int64_t count);

}  // namespace esb::eval

#endif  // ESB_CORE_EVAL_EVAL_H_
