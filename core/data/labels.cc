#include "core/data/labels.h"

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/data/idx.h"

namespace esb::data {

absl::StatusOr<std::vector<int32_t>> ReadLabelFile(const std::string& path,
                                                   int64_t limit, Env* env) {
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> file =
      env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  const uint64_t size = (*file)->size();
  std::string head;
  if (size >= 2) {
    if (absl::Status s = (*file)->ReadAt(0, 2, &head); !s.ok()) return s;
  }
  const bool idx =
      head.size() == 2 && ((head[0] == 0 && head[1] == 0) ||
                           (static_cast<uint8_t>(head[0]) == 0x1f &&
                            static_cast<uint8_t>(head[1]) == 0x8b));
  std::vector<int32_t> labels;
  if (idx) {
    absl::StatusOr<IdxArray> array = ReadIdx(path, limit, env);
    if (!array.ok()) return array.status();
    if (array->shape.size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": labels must be a 1-D IDX array; this one has ",
                       array->shape.size(), " dimensions"));
    }
    labels.assign(array->data.begin(), array->data.end());
    return labels;
  }
  if (size > static_cast<uint64_t>(kMaxLabelTextBytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": a text labels file of ", size,
                     " bytes is over the limit of ", kMaxLabelTextBytes));
  }
  std::string text;
  if (absl::Status s = (*file)->ReadAt(0, size, &text); !s.ok()) return s;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (text.empty()) return labels;
  int64_t line = 0;
  for (absl::string_view part : absl::StrSplit(text, '\n')) {
    ++line;
    if (limit >= 0 && static_cast<int64_t>(labels.size()) >= limit) break;
    part = absl::StripAsciiWhitespace(part);
    int32_t value;
    if (!absl::SimpleAtoi(part, &value) || value < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": line ", line, " '", part.substr(0, 40),
          "' is not a class index (an integer >= 0); a labels file is IDX "
          "labels or text with one integer per line"));
    }
    labels.push_back(value);
  }
  return labels;
}

}  // namespace esb::data
