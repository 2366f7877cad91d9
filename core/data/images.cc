#include "core/data/images.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/idx.h"

namespace esb::data {

absl::StatusOr<std::vector<float>> ReadImagesFor(const std::string& path,
                                                 int64_t limit,
                                                 const ImageGeometry& g,
                                                 const Normalization& norm,
                                                 int64_t* count) {
  absl::StatusOr<IdxArray> images = ReadIdx(path, limit);
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
  *count = s[0];
  std::vector<float> out(
      static_cast<size_t>(*count * g.channels * g.height * g.width));
  absl::Status st =
      NormalizeImages(images->data.data(), *count, static_cast<int>(g.channels),
                      g.height * g.width, norm, out.data());
  if (!st.ok()) return st;
  return out;
}

}  // namespace esb::data
