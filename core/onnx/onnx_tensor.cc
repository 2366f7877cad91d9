#include "core/onnx/onnx_tensor.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace esb::graph::internal {
namespace {

template <typename T>
std::vector<T> FromRaw(const std::string& raw) {
  std::vector<T> out(raw.size() / sizeof(T));
  std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
  return out;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // Subnormal half: normalise.
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 |
             (mant & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

absl::Status CheckElements(const std::string& what,
                           const std::vector<int64_t>& shape,
                           int64_t max_elements, absl::string_view field) {
  int64_t n = 1;
  for (int64_t d : shape) {
    std::optional<int64_t> next = CheckedMul(n, d);
    if (!next) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": shape ", absl::StrJoin(shape, "x"),
                       " has more elements than an int64 holds; the limit is ",
                       max_elements, " elements per tensor (", field, ")"));
    }
    n = *next;
  }
  if (n > max_elements) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": shape ", absl::StrJoin(shape, "x"), " of ", n,
                     " elements exceeds the limit of ", max_elements,
                     " elements per tensor (", field, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ConstValue> FromTensorProto(const onnx::TensorProto& t,
                                           const std::string& what,
                                           int64_t max_elements) {
  ConstValue v;
  for (int64_t d : t.dims()) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has a negative dimension ", d));
    }
    v.shape.push_back(d);
  }
  if (absl::Status s = CheckElements(what, v.shape, max_elements,
                                     "ImportOptions.max_tensor_elements");
      !s.ok()) {
    return s;
  }
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     " keeps its data in an external file that was not "
                     "loaded"));
  }
  const int64_t n = v.size();
  const bool raw = t.has_raw_data();
  auto check_count = [&](int64_t got) -> absl::Status {
    if (got != n) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has ", got, " values but its shape holds ", n));
    }
    return absl::OkStatus();
  };
  using TP = onnx::TensorProto;
  switch (t.data_type()) {
    case TP::FLOAT:
      v.f = raw ? FromRaw<float>(t.raw_data())
                : std::vector<float>(t.float_data().begin(),
                                     t.float_data().end());
      break;
    case TP::DOUBLE: {
      const std::vector<double> d =
          raw ? FromRaw<double>(t.raw_data())
              : std::vector<double>(t.double_data().begin(),
                                    t.double_data().end());
      v.f.assign(d.begin(), d.end());
      break;
    }
    case TP::FLOAT16: {
      if (raw) {
        for (uint16_t h : FromRaw<uint16_t>(t.raw_data())) {
          v.f.push_back(HalfToFloat(h));
        }
      } else {
        for (int32_t h : t.int32_data()) {
          v.f.push_back(HalfToFloat(static_cast<uint16_t>(h)));
        }
      }
      break;
    }
    case TP::INT64:
      v.is_int = true;
      v.i = raw ? FromRaw<int64_t>(t.raw_data())
                : std::vector<int64_t>(t.int64_data().begin(),
                                       t.int64_data().end());
      break;
    case TP::INT32:
    case TP::INT16:
    case TP::INT8:
    case TP::UINT8:
    case TP::UINT16:
    case TP::BOOL: {
      v.is_int = true;
      if (raw) {
        const std::string& r = t.raw_data();
        const auto* p = reinterpret_cast<const uint8_t*>(r.data());
        switch (t.data_type()) {
          case TP::INT32:
            for (int32_t x : FromRaw<int32_t>(r)) v.i.push_back(x);
            break;
          case TP::INT16:
            for (int16_t x : FromRaw<int16_t>(r)) v.i.push_back(x);
            break;
          case TP::UINT16:
            for (uint16_t x : FromRaw<uint16_t>(r)) v.i.push_back(x);
            break;
          case TP::INT8:
            for (size_t k = 0; k < r.size(); ++k) {
              v.i.push_back(static_cast<int8_t>(p[k]));
            }
            break;
          default:
            for (size_t k = 0; k < r.size(); ++k) v.i.push_back(p[k]);
        }
      } else {
        v.i.assign(t.int32_data().begin(), t.int32_data().end());
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has data type ", TP::DataType_Name(t.data_type()),
          ", which is not supported (float, double, float16 and integers "
          "are)"));
  }
  if (absl::Status s = check_count(v.is_int ? static_cast<int64_t>(v.i.size())
                                            : static_cast<int64_t>(v.f.size()));
      !s.ok()) {
    return s;
  }
  return v;
}

namespace {

absl::Status LoadOne(onnx::TensorProto& t, const std::string& base_dir,
                     int64_t& budget) {
  if (t.data_location() != onnx::TensorProto::EXTERNAL) return absl::OkStatus();
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  const std::string what = absl::StrCat("initializer '", t.name(), "'");
  for (const auto& entry : t.external_data()) {
    if (entry.key() == "location") location = entry.value();
    if (entry.key() == "offset" || entry.key() == "length") {
      int64_t value;
      if (!absl::SimpleAtoi(entry.value(), &value) || value < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": external data ", entry.key(), " '",
                         entry.value(), "' is not a non-negative integer"));
      }
      (entry.key() == "offset" ? offset : length) = value;
    }
  }
  if (base_dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " keeps its data in external file '", location,
                     "'; external data is only read for models loaded from "
                     "a file"));
  }
  const std::filesystem::path rel(location);
  bool escapes = location.empty() || rel.is_absolute();
  for (const auto& part : rel) escapes = escapes || part == "..";
  if (escapes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " names external file '", location,
        "'; it must be a relative path inside the model's folder"));
  }
  const std::filesystem::path file = std::filesystem::path(base_dir) / rel;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot open external data file ", file.string()));
  }
  in.seekg(0, std::ios::end);
  const int64_t file_size = in.tellg();
  if (file_size < 0) {
    return absl::DataLossError(
        absl::StrCat(what, ": cannot size external data file ", file.string()));
  }
  if (offset > file_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": external data offset ", offset, " lies outside ",
                     file.string(), " (", file_size, " bytes)"));
  }
  if (length < 0) length = file_size - offset;
  if (length > file_size - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": external data range [", offset, ", +", length,
        ") lies outside ", file.string(), " (", file_size, " bytes)"));
  }
  if (length > budget) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": external data of ", length,
                     " bytes exceeds the remaining budget of ", budget,
                     " bytes (ImportOptions.max_external_bytes)"));
  }
  budget -= length;
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  if (!in) {
    return absl::DataLossError(
        absl::StrCat(what, ": short read from ", file.string()));
  }
  t.set_raw_data(std::move(bytes));
  t.clear_external_data();
  t.set_data_location(onnx::TensorProto::DEFAULT);
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadExternalData(onnx::ModelProto& model,
                              const std::string& base_dir,
                              int64_t max_total_bytes) {
  int64_t budget = max_total_bytes;
  onnx::GraphProto* g = model.mutable_graph();
  for (auto& t : *g->mutable_initializer()) {
    if (absl::Status s = LoadOne(t, base_dir, budget); !s.ok()) return s;
  }
  for (auto& node : *g->mutable_node()) {
    for (auto& attr : *node.mutable_attribute()) {
      if (attr.has_t()) {
        if (absl::Status s = LoadOne(*attr.mutable_t(), base_dir, budget);
            !s.ok()) {
          return s;
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace esb::graph::internal
