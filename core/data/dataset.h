// The image sets users have, behind one interface for the quantization
// job's calibrate and eval stages and `esbctl eval`:
//
//   IDX       images N x H x W (one channel) or N x C x H x W, unsigned
//             bytes, gzipped or not (MNIST's format);
//   .npy      float32 N x C x H x W (N x H x W for one channel), already
//             normalized: fed as is; or uint8 of those shapes, normalized
//             as IDX pixels are;
//   folder    PNG and JPEG files (.png, .jpg, .jpeg), decoded and fitted to
//             the input as image_decode.h says, then normalized. Either
//             one subfolder per class (ImageNet's layout: the sorted
//             subfolder names are classes 0..K-1, images found at any
//             depth below them) or flat, with a labels file;
//   .tar      such a folder packed by `tar cf` (or WriteImageTar), read in
//             place. Its content may sit at the archive's root ("./" or
//             bare names) or under one top folder (`tar cf x.tar folder`),
//             which is then taken as the folder.
// The format is told by content, not name: a folder; 1f 8b (gzip, taken
// as IDX) or 00 00 (IDX); "\x93NUMPY"; "ustar" at byte 257. Names starting
// with '.' are skipped in folders and tars.
//
// Normalization (normalize.h) applies to 8-bit pixels: IDX, uint8 .npy and
// decoded images; never to float32 .npy arrays.
//
// Memory: IDX pixels are held (as bytes, as read); .npy rows, folder and
// tar images are read when asked for, so picking a few images of a large
// set decodes only those.
//
// Thread-safety: a Dataset is immutable once open; Images may be called
// from several threads at once.
#ifndef ESB_CORE_DATA_DATASET_H_
#define ESB_CORE_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/data/images.h"
#include "core/data/normalize.h"
#include "core/env/env.h"

namespace esb::data {

struct DatasetOptions {
  // The first `limit` items only (all with -1).
  int64_t limit = -1;
  // A labels file (labels.h) for the items, in their order; empty for
  // none. When set it wins over a folder's class subfolders.
  std::string labels_path;
  // Budget of the data set's bytes: the IDX array as decompressed (for the
  // items kept), the .npy or .tar file, or the image files of a folder.
  int64_t max_bytes = int64_t{16} << 30;
  // Budget of one decoded image, width x height.
  int64_t max_image_pixels = int64_t{1} << 26;
  // The file system the data set, its images and the labels file are read
  // through; nullptr for Env::Default(). Must outlive the Dataset.
  Env* env = nullptr;
};

class Dataset {
 public:
  enum class Format { kIdx, kNpy, kImageFolder, kImageTar };

  // The format of `path` in `env`, told by content as the header says,
  // without reading the data set. NOT_FOUND and INVALID_ARGUMENT as Open.
  static absl::StatusOr<Format> Detect(const std::string& path,
                                       Env* env = Env::Default());

  // Opens `path` for a model input of `geometry`, normalized by `norm`
  // where the header above says. NOT_FOUND naming `path` when it does not
  // exist; INVALID_ARGUMENT naming it when it is none of the formats, when
  // its shape does not fit `geometry` (expected and got named), when a
  // folder mixes images at its top with class subfolders or holds no
  // image, or when the labels file does not number the items;
  // RESOURCE_EXHAUSTED when it is over options.max_bytes; DATA_LOSS naming
  // the file when reading fails or a file shrinks while it is read.
  static absl::StatusOr<std::unique_ptr<Dataset>> Open(
      const std::string& path, const ImageGeometry& geometry,
      const Normalization& norm, const DatasetOptions& options = {});

  virtual ~Dataset() = default;
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  Format format() const { return format_; }
  const std::string& path() const { return path_; }
  const ImageGeometry& geometry() const { return geometry_; }
  int64_t count() const { return count_; }
  // C * H * W.
  int64_t item_floats() const {
    return geometry_.channels * geometry_.height * geometry_.width;
  }

  // The items at `indices`, in that order: indices.size() x C x H x W
  // floats. INVALID_ARGUMENT for an index outside [0, count()) and,
  // naming the image file, for an image that does not decode;
  // RESOURCE_EXHAUSTED for one over max_image_pixels; DATA_LOSS naming the
  // file when reading fails.
  absl::StatusOr<std::vector<float>> Images(
      absl::Span<const int64_t> indices) const;
  // Items [start, start + n).
  absl::StatusOr<std::vector<float>> ImageRange(int64_t start, int64_t n) const;

  // Whether the items have labels: from options.labels_path, or a folder's
  // class subfolders.
  bool has_labels() const { return has_labels_; }
  // count() labels when has_labels(), else none.
  const std::vector<int32_t>& labels() const { return labels_; }
  // The class subfolders' names, label i being classes()[i]; empty when
  // the labels do not come from subfolders.
  const std::vector<std::string>& classes() const { return classes_; }

 protected:
  Dataset(Format format, std::string path, ImageGeometry geometry,
          int64_t count)
      : format_(format),
        path_(std::move(path)),
        geometry_(std::move(geometry)),
        count_(count) {}

  // Writes item `index` (in range) as item_floats() floats to `out`.
  virtual absl::Status Fill(int64_t index, float* out) const = 0;

 private:
  friend class DatasetOpener;

  const Format format_;
  const std::string path_;
  const ImageGeometry geometry_;
  const int64_t count_;
  bool has_labels_ = false;
  std::vector<int32_t> labels_;
  std::vector<std::string> classes_;
};

// "idx", "npy", "image folder", "image tar".
absl::string_view FormatName(Dataset::Format format);

}  // namespace esb::data

#endif  // ESB_CORE_DATA_DATASET_H_
