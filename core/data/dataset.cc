#include "core/data/dataset.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/data/idx.h"
#include "core/data/image_decode.h"
#include "core/data/labels.h"
#include "core/data/npy.h"
#include "core/data/tar.h"
#include "core/graph/checked.h"

namespace esb::data {
namespace {

absl::Status OverBudget(const std::string& path, uint64_t bytes,
                        int64_t max_bytes) {
  return absl::ResourceExhaustedError(
      absl::StrCat(path, ": the data set holds ", bytes,
                   " bytes, more than the budget of ", max_bytes));
}

std::string Expected(const ImageGeometry& g) {
  return absl::StrCat("the model input '", g.input_name, "' takes N x ",
                      g.channels, " x ", g.height, " x ", g.width);
}

// Whether an array of `shape` holds N items of `g` (N x H x W for one
// channel, or N x C x H x W).
bool Fits(const std::vector<int64_t>& s, const ImageGeometry& g) {
  return (s.size() == 3 && g.channels == 1 && s[1] == g.height &&
          s[2] == g.width) ||
         (s.size() == 4 && s[1] == g.channels && s[2] == g.height &&
          s[3] == g.width);
}

int64_t Keep(int64_t n, int64_t limit) {
  return limit < 0 ? n : std::min(n, limit);
}

class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& path, RawImages raw, Normalization norm)
      : Dataset(Format::kIdx, path, raw.geometry, raw.count),
        raw_(std::move(raw)),
        norm_(std::move(norm)) {}

 protected:
  absl::Status Fill(int64_t index, float* out) const override {
    const ImageGeometry& g = geometry();
    return NormalizeImages(raw_.data.data() + index * item_floats(), 1,
                           static_cast<int>(g.channels), g.height * g.width,
                           norm_, out);
  }

 private:
  const RawImages raw_;
  const Normalization norm_;
};

class NpyDataset : public Dataset {
 public:
  NpyDataset(std::unique_ptr<RandomAccessFile> file, NpyHeader header,
             const ImageGeometry& g, int64_t count, Normalization norm)
      : Dataset(Format::kNpy, file->path(), g, count),
        file_(std::move(file)),
        header_(std::move(header)),
        norm_(std::move(norm)) {}

 protected:
  absl::Status Fill(int64_t index, float* out) const override {
    const uint64_t n = static_cast<uint64_t>(item_floats());
    const uint64_t bytes = n * header_.item_bytes;
    std::string row;
    if (absl::Status s =
            file_->ReadAt(header_.data_offset + index * bytes, bytes, &row);
        !s.ok()) {
      return s;
    }
    if (header_.dtype == NpyArray::DType::kFloat32) {
      std::memcpy(out, row.data(), bytes);
      return absl::OkStatus();
    }
    const ImageGeometry& g = geometry();
    return NormalizeImages(reinterpret_cast<const uint8_t*>(row.data()), 1,
                           static_cast<int>(g.channels), g.height * g.width,
                           norm_, out);
  }

 private:
  const std::unique_ptr<RandomAccessFile> file_;
  const NpyHeader header_;
  const Normalization norm_;
};

// One image of a folder or tar.
struct ImageEntry {
  std::string name;     // The file (folder) or "archive:member" (tar).
  std::string path;     // The file to read (folder).
  uint64_t offset = 0;  // Where in the archive (tar).
  uint64_t size = 0;
  int32_t label = -1;  // The class subfolder's index, -1 for a flat set.
};

class ImageFilesDataset : public Dataset {
 public:
  ImageFilesDataset(Format format, const std::string& path,
                    const ImageGeometry& g, std::vector<ImageEntry> entries,
                    std::unique_ptr<RandomAccessFile> tar, Env* env,
                    Normalization norm, int64_t max_pixels)
      : Dataset(format, path, g, static_cast<int64_t>(entries.size())),
        entries_(std::move(entries)),
        tar_(std::move(tar)),
        env_(env),
        norm_(std::move(norm)),
        max_pixels_(max_pixels) {}

 protected:
  absl::Status Fill(int64_t index, float* out) const override {
    const ImageEntry& e = entries_[index];
    std::string bytes;
    if (tar_ != nullptr) {
      if (absl::Status s = tar_->ReadAt(e.offset, e.size, &bytes); !s.ok()) {
        return s;
      }
    } else {
      absl::StatusOr<std::unique_ptr<RandomAccessFile>> file =
          env_->NewRandomAccessFile(e.path);
      if (!file.ok()) return file.status();
      if (absl::Status s = (*file)->ReadAt(0, (*file)->size(), &bytes);
          !s.ok()) {
        return s;
      }
    }
    absl::StatusOr<DecodedImage> image =
        DecodeImage(bytes, e.name, max_pixels_);
    if (!image.ok()) return image.status();
    absl::StatusOr<std::vector<uint8_t>> fitted =
        FitImage(*image, geometry(), e.name);
    if (!fitted.ok()) return fitted.status();
    const ImageGeometry& g = geometry();
    absl::Status s =
        NormalizeImages(fitted->data(), 1, static_cast<int>(g.channels),
                        g.height * g.width, norm_, out);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat(e.name, ": ", s.message()));
    }
    return s;
  }

 private:
  const std::vector<ImageEntry> entries_;
  const std::unique_ptr<RandomAccessFile> tar_;  // Null for a folder.
  Env* const env_;                               // A folder's images.
  const Normalization norm_;
  const int64_t max_pixels_;
};

// The images of a tree of relative paths (folders end with '/'), in order:
// one subfolder per class or flat. `entries` holds their paths in the
// tree; `classes` the class names, empty for a flat tree.
struct Layout {
  std::vector<std::pair<std::string, int32_t>> images;  // Path, label.
  std::vector<std::string> classes;
};

absl::StatusOr<Layout> LayOut(const std::vector<std::string>& tree,
                              const std::string& where) {
  std::vector<std::string> top_files;
  std::vector<std::string> nested;
  std::vector<std::string> class_names;
  for (const std::string& e : tree) {
    const size_t slash = e.find('/');
    if (slash != std::string::npos) class_names.push_back(e.substr(0, slash));
    if (absl::EndsWith(e, "/") || !HasImageExtension(e)) continue;
    (slash == std::string::npos ? top_files : nested).push_back(e);
  }
  if (!top_files.empty() && !nested.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": holds images both at its top ('", top_files.front(),
        "') and in subfolders ('", nested.front(),
        "'); use one subfolder per class, or a flat folder with a labels "
        "file"));
  }
  if (top_files.empty() && nested.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": holds no PNG or JPEG image (.png, .jpg, .jpeg)"));
  }
  Layout out;
  if (!top_files.empty()) {
    std::sort(top_files.begin(), top_files.end(), PathLess);
    for (std::string& f : top_files) out.images.emplace_back(f, -1);
    return out;
  }
  std::sort(class_names.begin(), class_names.end());
  class_names.erase(std::unique(class_names.begin(), class_names.end()),
                    class_names.end());
  if (class_names.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": too many classes"));
  }
  std::map<std::string, int32_t> index;
  for (size_t i = 0; i < class_names.size(); ++i) {
    index[class_names[i]] = static_cast<int32_t>(i);
  }
  for (const std::string& f : nested) {
    out.images.emplace_back(f, index[f.substr(0, f.find('/'))]);
  }
  // Class by class, each class's files by path (torchvision's order).
  std::sort(out.images.begin(), out.images.end(),
            [](const auto& a, const auto& b) {
              return a.second != b.second ? a.second < b.second
                                          : PathLess(a.first, b.first);
            });
  out.classes = std::move(class_names);
  return out;
}

bool Hidden(absl::string_view relative) {
  for (absl::string_view part : absl::StrSplit(relative, '/')) {
    if (absl::StartsWith(part, ".")) return true;
  }
  return false;
}

}  // namespace

// Builds each format's Dataset and sets the labels.
class DatasetOpener {
 public:
  DatasetOpener(const std::string& path, const ImageGeometry& g,
                const Normalization& norm, const DatasetOptions& options)
      : path_(path),
        g_(g),
        norm_(norm),
        options_(options),
        env_(options.env != nullptr ? options.env : Env::Default()) {}

  absl::StatusOr<std::unique_ptr<Dataset>> Open() {
    absl::StatusOr<Dataset::Format> format = Dataset::Detect(path_, env_);
    if (!format.ok()) return format.status();
    absl::StatusOr<std::unique_ptr<Dataset>> set;
    std::vector<std::string> classes;
    if (*format == Dataset::Format::kImageFolder) {
      set = OpenFolder(&classes);
    } else if (*format == Dataset::Format::kIdx) {
      set = OpenIdx();
    } else {
      absl::StatusOr<std::unique_ptr<RandomAccessFile>> file =
          env_->NewRandomAccessFile(path_);
      if (!file.ok()) return file.status();
      set = *format == Dataset::Format::kNpy
                ? OpenNpy(*std::move(file))
                : OpenTar(*std::move(file), &classes);
    }
    if (!set.ok()) return set.status();
    Dataset& d = **set;
    if (!options_.labels_path.empty()) {
      absl::StatusOr<std::vector<int32_t>> labels =
          ReadLabelFile(options_.labels_path, options_.limit, env_);
      if (!labels.ok()) return labels.status();
      if (static_cast<int64_t>(labels->size()) != d.count()) {
        return absl::InvalidArgumentError(
            absl::StrCat(options_.labels_path, ": holds ", labels->size(),
                         " labels for ", d.count(), " images"));
      }
      d.labels_ = *std::move(labels);
      d.has_labels_ = true;
    } else if (!classes.empty()) {
      d.labels_ = std::move(class_labels_);
      d.classes_ = std::move(classes);
      d.has_labels_ = true;
    }
    return set;
  }

 private:
  absl::StatusOr<std::unique_ptr<Dataset>> OpenIdx() {
    absl::StatusOr<std::vector<int64_t>> shape = ReadIdxShape(path_, env_);
    if (!shape.ok()) return shape.status();
    if (!shape->empty()) (*shape)[0] = Keep((*shape)[0], options_.limit);
    const std::optional<int64_t> bytes = graph::CheckedProduct(*shape);
    if (!bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_,
                       ": the IDX dimensions describe more than 1 TiB (more "
                       "bytes than an int64 holds)"));
    }
    if (*bytes > options_.max_bytes) {
      return OverBudget(path_, bytes.value_or(INT64_MAX), options_.max_bytes);
    }
    absl::StatusOr<RawImages> raw =
        ReadRawImagesFor(path_, options_.limit, g_, env_);
    if (!raw.ok()) return raw.status();
    return std::unique_ptr<Dataset>(
        new IdxDataset(path_, *std::move(raw), norm_));
  }

  absl::StatusOr<std::unique_ptr<Dataset>> OpenNpy(
      std::unique_ptr<RandomAccessFile> file) {
    if (file->size() > static_cast<uint64_t>(options_.max_bytes)) {
      return OverBudget(path_, file->size(), options_.max_bytes);
    }
    std::string head;
    const uint64_t n =
        std::min<uint64_t>(file->size(), kMaxNpyHeaderBytes + 12);
    if (absl::Status s = file->ReadAt(0, n, &head); !s.ok()) return s;
    absl::StatusOr<NpyHeader> header = ParseNpyHeader(head, path_);
    if (!header.ok()) return header.status();
    const uint64_t need =
        static_cast<uint64_t>(header->count) * header->item_bytes;
    if (file->size() - header->data_offset != need) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": not a supported .npy array: shape (",
                       absl::StrJoin(header->shape, ", "), ") needs ", need,
                       " data bytes but the file holds ",
                       file->size() - header->data_offset));
    }
    if (!Fits(header->shape, g_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": a ",
          header->dtype == NpyArray::DType::kFloat32 ? "float32" : "uint8",
          " array of shape ", absl::StrJoin(header->shape, " x "),
          " does not fit: ", Expected(g_)));
    }
    const int64_t count = Keep(header->shape[0], options_.limit);
    return std::unique_ptr<Dataset>(
        new NpyDataset(std::move(file), *std::move(header), g_, count, norm_));
  }

  absl::StatusOr<std::unique_ptr<Dataset>> OpenFolder(
      std::vector<std::string>* classes) {
    absl::StatusOr<std::vector<std::string>> tree = ListImageTree(path_, env_);
    if (!tree.ok()) return tree.status();
    absl::StatusOr<Layout> layout = LayOut(*tree, path_);
    if (!layout.ok()) return layout.status();
    std::vector<ImageEntry> entries;
    uint64_t bytes = 0;
    const int64_t keep =
        Keep(static_cast<int64_t>(layout->images.size()), options_.limit);
    for (int64_t i = 0; i < keep; ++i) {
      ImageEntry e;
      e.path = absl::StrCat(path_, "/", layout->images[i].first);
      e.name = e.path;
      e.label = layout->images[i].second;
      absl::StatusOr<uint64_t> size = env_->GetFileSize(e.path);
      if (!size.ok()) return size.status();
      e.size = *size;
      bytes += e.size;
      if (bytes > static_cast<uint64_t>(options_.max_bytes)) {
        return OverBudget(path_, bytes, options_.max_bytes);
      }
      entries.push_back(std::move(e));
    }
    return Finish(Dataset::Format::kImageFolder, *std::move(layout),
                  std::move(entries), nullptr, classes);
  }

  absl::StatusOr<std::unique_ptr<Dataset>> OpenTar(
      std::unique_ptr<RandomAccessFile> file,
      std::vector<std::string>* classes) {
    if (file->size() > static_cast<uint64_t>(options_.max_bytes)) {
      return OverBudget(path_, file->size(), options_.max_bytes);
    }
    absl::StatusOr<std::vector<TarMember>> members = ListTar(*file);
    if (!members.ok()) return members.status();
    // Paths relative to the archive's root, folders ending with '/'.
    bool explicit_root = false;
    std::map<std::string, const TarMember*> by_path;
    std::vector<std::string> tree;
    for (const TarMember& m : *members) {
      std::string p = m.path;
      while (absl::StartsWith(p, "./")) p.erase(0, 2);
      while (absl::StartsWith(p, "/")) p.erase(0, 1);
      if (p.empty() || p == ".") {
        explicit_root = true;
        continue;
      }
      if (m.is_dir && !absl::EndsWith(p, "/")) p += "/";
      if (Hidden(absl::StripSuffix(p, "/"))) continue;
      tree.push_back(p);
      if (!m.is_dir) by_path[p] = &m;
    }
    // `tar cf x.tar folder` puts everything under "folder/".
    std::string top;
    if (!explicit_root && !tree.empty()) {
      const size_t slash = tree.front().find('/');
      if (slash != std::string::npos) {
        top = tree.front().substr(0, slash + 1);
        for (const std::string& p : tree) {
          if (!absl::StartsWith(p, top)) {
            top.clear();
            break;
          }
        }
      }
    }
    std::vector<std::string> relative;
    std::map<std::string, std::string> member_of;  // Relative -> stored.
    for (const std::string& p : tree) {
      std::string r = p.substr(top.size());
      if (r.empty()) continue;
      member_of[r] = p;
      relative.push_back(r);
    }
    absl::StatusOr<Layout> layout = LayOut(relative, path_);
    if (!layout.ok()) return layout.status();
    std::vector<ImageEntry> entries;
    const int64_t keep =
        Keep(static_cast<int64_t>(layout->images.size()), options_.limit);
    for (int64_t i = 0; i < keep; ++i) {
      const TarMember* m = by_path[member_of[layout->images[i].first]];
      ImageEntry e;
      e.name = absl::StrCat(path_, ":", m->path);
      e.offset = m->offset;
      e.size = m->size;
      e.label = layout->images[i].second;
      entries.push_back(std::move(e));
    }
    return Finish(Dataset::Format::kImageTar, *std::move(layout),
                  std::move(entries), std::move(file), classes);
  }

  absl::StatusOr<std::unique_ptr<Dataset>> Finish(
      Dataset::Format format, Layout layout, std::vector<ImageEntry> entries,
      std::unique_ptr<RandomAccessFile> tar,
      std::vector<std::string>* classes) {
    if (!layout.classes.empty()) {
      for (const ImageEntry& e : entries) class_labels_.push_back(e.label);
      *classes = std::move(layout.classes);
    }
    return std::unique_ptr<Dataset>(new ImageFilesDataset(
        format, path_, g_, std::move(entries), std::move(tar), env_, norm_,
        options_.max_image_pixels));
  }

  const std::string& path_;
  const ImageGeometry& g_;
  const Normalization& norm_;
  const DatasetOptions& options_;
  Env* const env_;
  std::vector<int32_t> class_labels_;
};

absl::StatusOr<Dataset::Format> Dataset::Detect(const std::string& path,
                                                Env* env) {
  absl::StatusOr<FileType> type = env->GetFileType(path);
  if (absl::IsNotFound(type.status())) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file or folder"));
  }
  if (!type.ok()) return type.status();
  if (*type == FileType::kDirectory) return Format::kImageFolder;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> file =
      env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  std::string head;
  const uint64_t n = std::min<uint64_t>((*file)->size(), 512);
  if (absl::Status s = (*file)->ReadAt(0, n, &head); !s.ok()) return s;
  const auto byte = [&](size_t i) {
    return i < head.size() ? static_cast<int>(static_cast<uint8_t>(head[i]))
                           : -1;
  };
  if (LooksLikeTar(head)) return Format::kImageTar;
  if (absl::StartsWith(head, "\x93NUMPY")) return Format::kNpy;
  if ((byte(0) == 0x1f && byte(1) == 0x8b) ||
      (byte(0) == 0 && byte(1) == 0 && byte(2) >= 0)) {
    return Format::kIdx;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path,
      ": not a data set: neither IDX images (gzipped or not), a .npy array, "
      "a tar of images nor a folder of images (bad magic: IDX starts 00 00, "
      "gzip 1f 8b, .npy 93 'NUMPY', a tar has 'ustar' at byte 257)"));
}

absl::StatusOr<std::unique_ptr<Dataset>> Dataset::Open(
    const std::string& path, const ImageGeometry& geometry,
    const Normalization& norm, const DatasetOptions& options) {
  return DatasetOpener(path, geometry, norm, options).Open();
}

absl::StatusOr<std::vector<float>> Dataset::Images(
    absl::Span<const int64_t> indices) const {
  const int64_t per = item_floats();
  std::vector<float> out(indices.size() * static_cast<size_t>(per));
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t k = indices[i];
    if (k < 0 || k >= count_) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": image index ", k, " is outside [0, ", count_, ")"));
    }
    if (absl::Status s = Fill(k, out.data() + static_cast<int64_t>(i) * per);
        !s.ok()) {
      return s;
    }
  }
  return out;
}

absl::StatusOr<std::vector<float>> Dataset::ImageRange(int64_t start,
                                                       int64_t n) const {
  std::vector<int64_t> indices(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(indices.begin(), indices.end(), start);
  return Images(indices);
}

absl::string_view FormatName(Dataset::Format format) {
  switch (format) {
    case Dataset::Format::kIdx:
      return "idx";
    case Dataset::Format::kNpy:
      return "npy";
    case Dataset::Format::kImageFolder:
      return "image folder";
    case Dataset::Format::kImageTar:
      return "image tar";
  }
  return "unknown";
}

}  // namespace esb::data
