#include "core/data/npy.h"

#include <cstring>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/graph/checked.h"

namespace esb::data {
namespace {

constexpr absl::string_view kMagic = "\x93NUMPY";

absl::Status Bad(absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(name, ": not a supported .npy array: ", what));
}

// The value of `key` in the header dict, e.g. 'descr': '<f4' -> '<f4'.
// The header is a Python literal written by numpy; only the three keys numpy
// writes are read.
absl::StatusOr<std::string> DictValue(absl::string_view header,
                                      absl::string_view key,
                                      absl::string_view name) {
  const std::string quoted = absl::StrCat("'", key, "'");
  const size_t at = header.find(quoted);
  if (at == absl::string_view::npos) {
    return Bad(name, absl::StrCat("header has no ", quoted, " key"));
  }
  size_t pos = header.find(':', at + quoted.size());
  if (pos == absl::string_view::npos) return Bad(name, "malformed header");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  size_t end;
  if (pos < header.size() && header[pos] == '(') {
    end = header.find(')', pos);
    if (end == absl::string_view::npos) return Bad(name, "malformed shape");
    ++end;
  } else {
    end = header.find_first_of(",}", pos);
    if (end == absl::string_view::npos) return Bad(name, "malformed header");
  }
  const absl::string_view value =
      absl::StripAsciiWhitespace(header.substr(pos, end - pos));
  return std::string{value};
}

}  // namespace

int64_t NpyArray::size() const {
  return graph::CheckedProduct(shape).value_or(-1);
}

absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view bytes,
                                         absl::string_view name) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) {
    return Bad(name, "missing the \\x93NUMPY magic");
  }
  const auto major = static_cast<uint8_t>(bytes[6]);
  size_t header_len;
  size_t offset;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) |
                 (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Bad(name, "truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i]))
                    << (8 * i);
    }
    offset = 12;
  } else {
    return Bad(name, absl::StrCat("format version ", major,
                                  " is unknown (1, 2 and 3 are read)"));
  }
  if (header_len > kMaxNpyHeaderBytes) {
    return Bad(name,
               absl::StrCat("header of ", header_len, " bytes is too long"));
  }
  if (bytes.size() < offset + header_len) return Bad(name, "truncated header");
  const absl::string_view header = bytes.substr(offset, header_len);

  auto descr = DictValue(header, "descr", name);
  if (!descr.ok()) return descr.status();
  auto fortran = DictValue(header, "fortran_order", name);
  if (!fortran.ok()) return fortran.status();
  auto shape_text = DictValue(header, "shape", name);
  if (!shape_text.ok()) return shape_text.status();

  NpyHeader out;
  out.data_offset = offset + header_len;
  if (*descr == "'<f4'") {
    out.dtype = NpyArray::DType::kFloat32;
    out.item_bytes = 4;
  } else if (*descr == "'|u1'" || *descr == "'<u1'") {
    out.dtype = NpyArray::DType::kUInt8;
    out.item_bytes = 1;
  } else {
    return Bad(name, absl::StrCat("dtype ", *descr,
                                  " is not supported (float32 '<f4' and "
                                  "uint8 '|u1' are)"));
  }
  if (*fortran != "False") {
    return Bad(name, "Fortran-order arrays are not supported; save in C order");
  }
  absl::string_view dims = *shape_text;
  dims = absl::StripPrefix(absl::StripSuffix(dims, ")"), "(");
  for (absl::string_view part : absl::StrSplit(dims, ',', absl::SkipEmpty())) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    int64_t d;
    if (!absl::SimpleAtoi(part, &d) || d < 0) {
      return Bad(name, absl::StrCat("shape entry '", part, "' is invalid"));
    }
    out.shape.push_back(d);
  }
  // More than 2^40 items cannot be a real file; the bound also keeps
  // count * item within size_t.
  const std::optional<int64_t> product = graph::CheckedProduct(out.shape);
  if (!product || *product > (int64_t{1} << 40)) {
    return Bad(name, absl::StrCat("shape (", absl::StrJoin(out.shape, ", "),
                                  ") is too large"));
  }
  out.count = *product;
  return out;
}

absl::StatusOr<NpyArray> ParseNpy(absl::string_view bytes,
                                  absl::string_view name) {
  absl::StatusOr<NpyHeader> header = ParseNpyHeader(bytes, name);
  if (!header.ok()) return header.status();
  const size_t data_at = header->data_offset;
  const size_t need = static_cast<size_t>(header->count) * header->item_bytes;
  if (bytes.size() - data_at != need) {
    return Bad(name, absl::StrCat("shape (", absl::StrJoin(header->shape, ", "),
                                  ") needs ", need,
                                  " data bytes but the file "
                                  "holds ",
                                  bytes.size() - data_at));
  }
  NpyArray array;
  array.dtype = header->dtype;
  array.shape = header->shape;
  if (array.dtype == NpyArray::DType::kFloat32) {
    array.f32.resize(static_cast<size_t>(header->count));
    std::memcpy(array.f32.data(), bytes.data() + data_at, need);
  } else {
    array.u8.assign(bytes.begin() + data_at, bytes.end());
  }
  return array;
}

absl::StatusOr<NpyArray> ReadNpy(const std::string& path, Env* env) {
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> file =
      env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  std::string bytes;
  if (absl::Status s = (*file)->ReadAt(0, (*file)->size(), &bytes); !s.ok()) {
    return s;
  }
  return ParseNpy(bytes, path);
}

std::string SerializeNpy(absl::Span<const float> values,
                         absl::Span<const int64_t> shape) {
  std::string dims = absl::StrJoin(shape, ", ");
  if (shape.size() == 1) dims += ",";
  std::string header = absl::StrCat(
      "{'descr': '<f4', 'fortran_order': False, "
      "'shape': (",
      dims, "), }");
  // Magic, version and length take 10 bytes; pad with spaces so the data
  // starts on a 64-byte boundary, and end the header with a newline.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out(kMagic);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out.append(reinterpret_cast<const char*>(values.data()),
             values.size() * sizeof(float));
  return out;
}

}  // namespace esb::data
