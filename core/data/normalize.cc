#include "core/data/normalize.h"

#include <array>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace esb::data {
namespace {

// Parses `csv` ("0.5, 0.25") for the error messages' `what` ("mean").
absl::StatusOr<std::vector<float>> ParseList(absl::string_view csv,
                                             absl::string_view what) {
  std::vector<float> values;
  int index = 0;
  for (absl::string_view part : absl::StrSplit(csv, ',')) {
    ++index;
    part = absl::StripAsciiWhitespace(part);
    float value;
    if (part.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", csv, "': value ", index, " is empty"));
    }
    if (!absl::SimpleAtof(part, &value) || !std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", csv, "': '", part, "' is not a finite number"));
    }
    values.push_back(value);
  }
  return values;
}

}  // namespace

absl::StatusOr<Normalization> ParseNormalization(absl::string_view mean_csv,
                                                 absl::string_view std_csv) {
  mean_csv = absl::StripAsciiWhitespace(mean_csv);
  std_csv = absl::StripAsciiWhitespace(std_csv);
  Normalization norm;
  if (mean_csv.empty() && std_csv.empty()) return norm;
  if (mean_csv.empty() || std_csv.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mean '", mean_csv, "' and std '", std_csv, "': give both or neither"));
  }
  auto mean = ParseList(mean_csv, "mean");
  if (!mean.ok()) return mean.status();
  auto stdev = ParseList(std_csv, "std");
  if (!stdev.ok()) return stdev.status();
  for (size_t i = 0; i < stdev->size(); ++i) {
    if (!((*stdev)[i] > 0.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("std '", std_csv, "': value ", i + 1, " is ",
                       (*stdev)[i], " but every value must be > 0"));
    }
  }
  if (mean->size() != stdev->size() && mean->size() != 1 &&
      stdev->size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("mean '", mean_csv, "' has ", mean->size(),
                     " values and std '", std_csv, "' has ", stdev->size(),
                     "; give the same count, or one value for every channel"));
  }
  if (mean->size() == 1) mean->resize(stdev->size(), mean->front());
  if (stdev->size() == 1) stdev->resize(mean->size(), stdev->front());
  norm.mean = *std::move(mean);
  norm.std = *std::move(stdev);
  return norm;
}

absl::Status NormalizeImages(const uint8_t* pixels, int64_t count, int channels,
                             int64_t pixels_per_channel,
                             const Normalization& norm, float* out) {
  if (count < 0 || channels < 1 || pixels_per_channel < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot normalize ", count, " images of ", channels, " x ",
                     pixels_per_channel, " pixels"));
  }
  if (norm.mean.size() != norm.std.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("normalization has ", norm.mean.size(), " mean and ",
                     norm.std.size(), " std values; the counts must match"));
  }
  const size_t values = norm.mean.size();
  if (values > 1 && values != static_cast<size_t>(channels)) {
    return absl::InvalidArgumentError(
        absl::StrCat("normalization has ", values,
                     " values per channel but the images "
                     "have ",
                     channels, channels == 1 ? " channel" : " channels"));
  }
  // One table per channel: 256 divisions per channel instead of one per
  // pixel, with the same rounding as the formula.
  std::vector<std::array<float, 256>> table(channels);
  for (int c = 0; c < channels; ++c) {
    for (int p = 0; p < 256; ++p) {
      const float x = static_cast<float>(p) / 255.0f;
      if (values == 0) {
        table[c][p] = x;
      } else {
        const size_t k = values == 1 ? 0 : static_cast<size_t>(c);
        table[c][p] = (x - norm.mean[k]) / norm.std[k];
      }
    }
  }
  for (int64_t n = 0; n < count; ++n) {
    for (int c = 0; c < channels; ++c) {
      const std::array<float, 256>& t = table[c];
      for (int64_t i = 0; i < pixels_per_channel; ++i) *out++ = t[*pixels++];
    }
  }
  return absl::OkStatus();
}

}  // namespace esb::data
