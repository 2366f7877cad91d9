#include "core/eval/eval.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/data/labels.h"

namespace esb::eval {

absl::StatusOr<Outputs> RunBatches(const InferFn& infer,
                                   const ItemSource& source, int64_t count,
                                   const std::vector<int64_t>& item_shape,
                                   const BatchOptions& options) {
  int64_t per_item = 1;
  for (int64_t d : item_shape) per_item *= d;
  if (count < 0 || per_item <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot feed ", count, " items of ", per_item, " values"));
  }
  const bool fixed = options.fixed_batch > 0;
  const int64_t step =
      fixed ? options.fixed_batch : std::max<int64_t>(options.batch, 1);
  Outputs out;
  out.count = count;
  for (int64_t start = 0; start < count; start += step) {
    if (options.cancelled && options.cancelled()) {
      return absl::CancelledError(
          absl::StrCat("cancelled after ", start, " of ", count, " items"));
    }
    const int64_t n = std::min(step, count - start);
    const int64_t fed = fixed ? step : n;
    absl::StatusOr<std::vector<float>> items = source(start, n);
    if (!items.ok()) return items.status();
    if (static_cast<int64_t>(items->size()) != n * per_item) {
      return absl::InvalidArgumentError(
          absl::StrCat(items->size(), " values do not hold ", n, " items of ",
                       per_item, " values"));
    }
    graph::Tensor batch;
    batch.shape = {fed};
    batch.shape.insert(batch.shape.end(), item_shape.begin(), item_shape.end());
    if (fed == n) {
      batch.data = *std::move(items);
    } else {
      batch.data.assign(static_cast<size_t>(fed * per_item), 0.0f);
      std::copy(items->begin(), items->end(), batch.data.begin());
    }
    absl::StatusOr<graph::Tensor> y = infer(batch);
    if (!y.ok()) return y.status();
    if (y->shape.empty() || y->shape[0] != fed ||
        static_cast<int64_t>(y->data.size()) % fed != 0) {
      return absl::InternalError(
          "the model's output does not follow the batch dimension");
    }
    const int64_t y_per_item = static_cast<int64_t>(y->data.size()) / fed;
    if (start > 0 && y_per_item != out.per_item) {
      return absl::InternalError(
          absl::StrCat("the model's output changed from ", out.per_item, " to ",
                       y_per_item, " values per item between batches"));
    }
    out.per_item = y_per_item;
    out.data.insert(out.data.end(), y->data.begin(),
                    y->data.begin() + n * y_per_item);
    if (options.on_progress) options.on_progress(start + n);
  }
  return out;
}

absl::StatusOr<Outputs> RunBatches(const InferFn& infer,
                                   absl::Span<const float> items, int64_t count,
                                   const std::vector<int64_t>& item_shape,
                                   const BatchOptions& options) {
  int64_t per_item = 1;
  for (int64_t d : item_shape) per_item *= d;
  if (count < 0 || per_item <= 0 ||
      static_cast<int64_t>(items.size()) != count * per_item) {
    return absl::InvalidArgumentError(
        absl::StrCat(items.size(), " values do not hold ", count, " items of ",
                     per_item, " values"));
  }
  const ItemSource source =
      [&](int64_t start, int64_t n) -> absl::StatusOr<std::vector<float>> {
    return std::vector<float>(items.begin() + start * per_item,
                              items.begin() + (start + n) * per_item);
  };
  return RunBatches(infer, source, count, item_shape, options);
}

std::vector<int> Predictions(const Outputs& outputs) {
  std::vector<int> out;
  out.reserve(static_cast<size_t>(outputs.count));
  if (outputs.per_item <= 0) return std::vector<int>(outputs.count, 0);
  for (int64_t i = 0; i < outputs.count; ++i) {
    const float* row = outputs.data.data() + i * outputs.per_item;
    out.push_back(
        static_cast<int>(std::max_element(row, row + outputs.per_item) - row));
  }
  return out;
}

template <typename Label>
double Top1(absl::Span<const int> predicted,
            absl::Span<const std::type_identity_t<Label>> labels) {
  if (predicted.empty()) return 0.0;
  int64_t right = 0;
  for (size_t i = 0; i < predicted.size() && i < labels.size(); ++i) {
    right += predicted[i] == labels[i];
  }
  return static_cast<double>(right) / static_cast<double>(predicted.size());
}

template double Top1<uint8_t>(absl::Span<const int>, absl::Span<const uint8_t>);
template double Top1<int32_t>(absl::Span<const int>, absl::Span<const int32_t>);

double Agreement(absl::Span<const int> a, absl::Span<const int> b) {
  if (a.empty()) return 0.0;
  int64_t same = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

absl::StatusOr<std::vector<int32_t>> ReadLabels(const std::string& path,
                                                int64_t limit, int64_t count) {
  absl::StatusOr<std::vector<int32_t>> labels =
      data::ReadLabelFile(path, limit);
  if (!labels.ok()) return labels.status();
  if (static_cast<int64_t>(labels->size()) != count) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": holds ", labels->size(), " labels for ", count, " images"));
  }
  return labels;
}

}  // namespace esb::eval
