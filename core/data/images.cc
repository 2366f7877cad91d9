#include "core/data/images.h"

#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/idx.h"

namespace esb::data {

absl::StatusOr<RawImages> ReadRawImagesFor(const std::string& path,
                                           int64_t limit,
                                           const ImageGeometry& g, Env* env) {
  absl::StatusOr<IdxArray> images = ReadIdx(path, limit, env);
  if (!images.ok()) return images.status();
  const auto& s = images->shape;
  const bool fits = (s.size() == 3 && g.channels == 1 && s[1] == g.height &&
                     s[2] == g.width) ||
                    (s.size() == 4 && s[1] == g.channels && s[2] == g.height &&
                     s[3] == g.width);
  if (!fits) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": images of shape ", absl::StrJoin(s, " x "),
        " do not fit the model input '", g.input_name,
        "' (C x H x W = ", g.channels, " x ", g.height, " x ", g.width, ")"));
  }
  RawImages out;
  out.count = s[0];
  out.geometry = g;
  out.data = std::move(images->data);
  return out;
}

absl::StatusOr<std::vector<float>> NormalizeSelected(
    const RawImages& images, const std::vector<int64_t>& indices,
    const Normalization& norm) {
  const ImageGeometry& g = images.geometry;
  const int64_t pixels = g.height * g.width;
  const int64_t per = g.channels * pixels;
  std::vector<float> out(indices.size() * static_cast<size_t>(per));
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t k = indices[i];
    if (k < 0 || k >= images.count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "image index ", k, " is outside [0, ", images.count, ")"));
    }
    absl::Status st = NormalizeImages(
        images.data.data() + k * per, 1, static_cast<int>(g.channels), pixels,
        norm, out.data() + static_cast<int64_t>(i) * per);
    if (!st.ok()) return st;
  }
  return out;
}

absl::StatusOr<std::vector<float>> ReadImagesFor(const std::string& path,
                                                 int64_t limit,
                                                 const ImageGeometry& g,
                                                 const Normalization& norm,
                                                 int64_t* count, Env* env) {
  absl::StatusOr<RawImages> images = ReadRawImagesFor(path, limit, g, env);
  if (!images.ok()) return images.status();
  *count = images->count;
  std::vector<int64_t> all(static_cast<size_t>(images->count));
  std::iota(all.begin(), all.end(), 0);
  return NormalizeSelected(*images, all, norm);
}

}  // namespace esb::data
