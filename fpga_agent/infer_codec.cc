#include "fpga_agent/infer_codec.h"

#include <bit>
#include <cstring>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace esb::agent {
namespace {

static_assert(std::endian::native == std::endian::little,
              "raw tensor contents are little-endian; so must the host be");

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

// Values in the typed fields other than `expected`, as "int_contents (3)".
std::string OtherContents(const inference::InferTensorContents& c,
                          absl::string_view expected) {
  std::vector<std::string> found;
  auto note = [&](absl::string_view field, int size) {
    if (size > 0 && field != expected) {
      found.push_back(absl::StrCat(field, " (", size, " values)"));
    }
  };
  note("bool_contents", c.bool_contents_size());
  note("int_contents", c.int_contents_size());
  note("int64_contents", c.int64_contents_size());
  note("uint_contents", c.uint_contents_size());
  note("uint64_contents", c.uint64_contents_size());
  note("fp32_contents", c.fp32_contents_size());
  note("fp64_contents", c.fp64_contents_size());
  note("bytes_contents", c.bytes_contents_size());
  return absl::StrJoin(found, ", ");
}

bool HasTypedValues(const inference::InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() +
             c.int64_contents_size() + c.uint_contents_size() +
             c.uint64_contents_size() + c.fp32_contents_size() +
             c.fp64_contents_size() + c.bytes_contents_size() >
         0;
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

ModelSignature SignatureOf(const std::string& name,
                           const pipeline::PackagedModel& model,
                           int max_batch) {
  ModelSignature s;
  s.model = name;
  s.input.name = model.graph.inputs.front().name;
  s.input.shape = model.graph.inputs.front().shape;
  s.input.shape[0] = graph::kBatch;
  for (const graph::ValueInfo& out : model.graph.outputs) {
    TensorSpec spec{out.name, out.shape};
    if (!spec.shape.empty()) spec.shape[0] = graph::kBatch;
    s.outputs.push_back(std::move(spec));
  }
  s.normalization = model.normalization;
  s.max_batch = max_batch;
  return s;
}

absl::StatusOr<int64_t> ParseModelVersion(const std::string& version) {
  if (version.empty()) return 0;
  int64_t v = 0;
  if (!absl::SimpleAtoi(version, &v) || v < 1) {
    return Invalid(absl::StrCat("model_version '", version,
                                "' is not a version number (1, 2, ...; "
                                "\"\" for the latest)"));
  }
  return v;
}

absl::StatusOr<graph::Tensor> DecodeInput(
    const inference::ModelInferRequest& request,
    const ModelSignature& signature) {
  const TensorSpec& spec = signature.input;
  if (request.inputs_size() != 1) {
    return Invalid(absl::StrCat("model '", signature.model,
                                "' takes 1 input ('", spec.name,
                                "'); the request has ", request.inputs_size()));
  }
  const inference::ModelInferRequest::InferInputTensor& in = request.inputs(0);
  if (in.name() != spec.name) {
    return Invalid(absl::StrCat("input '", in.name(),
                                "' is not an input of model '", signature.model,
                                "'; expected '", spec.name, "'"));
  }
  const bool fp32 = in.datatype() == "FP32";
  if (!fp32 && in.datatype() != "UINT8") {
    return Invalid(absl::StrCat("input '", spec.name, "' has datatype '",
                                in.datatype(),
                                "'; expected FP32 (or UINT8 pixels)"));
  }
  const std::vector<int64_t> shape(in.shape().begin(), in.shape().end());
  bool shape_ok = shape.size() == spec.shape.size();
  for (size_t i = 1; shape_ok && i < shape.size(); ++i) {
    shape_ok = shape[i] == spec.shape[i];
  }
  if (!shape_ok) {
    return Invalid(absl::StrCat("input '", spec.name, "' has shape ",
                                ShapeString(shape), "; expected ",
                                ShapeString(spec.shape), " (-1: the batch)"));
  }
  const int64_t batch = shape[0];
  if (batch < 1 || batch > signature.max_batch) {
    return Invalid(absl::StrCat("input '", spec.name, "' has a batch of ",
                                batch, "; expected 1..", signature.max_batch,
                                " (the agent's --max-batch)"));
  }
  int64_t count = 1;
  for (int64_t d : shape) count *= d;  // Dims checked: no overflow.

  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != request.inputs_size()) {
    return Invalid(absl::StrCat(
        "raw_input_contents has ", request.raw_input_contents_size(),
        " entries; expected one per input (", request.inputs_size(), ")"));
  }
  if (raw && HasTypedValues(in.contents())) {
    return Invalid(absl::StrCat(
        "input '", spec.name,
        "' has both contents and raw_input_contents; send one of them"));
  }

  graph::Tensor tensor;
  tensor.shape = shape;
  tensor.data.resize(static_cast<size_t>(count));
  std::vector<uint8_t> pixels;
  const std::string datatype = fp32 ? "FP32" : "UINT8";
  if (raw) {
    const std::string& bytes = request.raw_input_contents(0);
    const int64_t expected = count * (fp32 ? 4 : 1);
    if (static_cast<int64_t>(bytes.size()) != expected) {
      return Invalid(absl::StrCat("raw_input_contents[0] (input '", spec.name,
                                  "') has ", bytes.size(), " bytes; shape ",
                                  ShapeString(shape), " of ", datatype,
                                  " needs ", expected));
    }
    if (fp32) {
      std::memcpy(tensor.data.data(), bytes.data(), bytes.size());
      return tensor;
    }
    pixels.assign(bytes.begin(), bytes.end());
  } else {
    const inference::InferTensorContents& c = in.contents();
    const absl::string_view field = fp32 ? "fp32_contents" : "uint_contents";
    const int64_t have = fp32 ? c.fp32_contents_size() : c.uint_contents_size();
    if (have != count) {
      const std::string other = OtherContents(c, field);
      return Invalid(absl::StrCat(
          "input '", spec.name, "' has ", have, " values in contents.", field,
          "; shape ", ShapeString(shape), " of ", datatype, " needs ", count,
          other.empty() ? "" : absl::StrCat(" (values found in ", other, ")")));
    }
    if (fp32) {
      std::copy(c.fp32_contents().begin(), c.fp32_contents().end(),
                tensor.data.begin());
      return tensor;
    }
    pixels.resize(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      const uint32_t v = c.uint_contents(static_cast<int>(i));
      if (v > 255) {
        return Invalid(absl::StrCat("input '", spec.name,
                                    "' contents.uint_contents[", i, "] is ", v,
                                    "; UINT8 values are 0..255"));
      }
      pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
    }
  }
  // UINT8 pixels: normalized as the package says.
  const int channels = shape.size() >= 3 ? static_cast<int>(shape[1]) : 1;
  const int64_t per_channel = count / batch / channels;
  if (absl::Status s =
          data::NormalizeImages(pixels.data(), batch, channels, per_channel,
                                signature.normalization, tensor.data.data());
      !s.ok()) {
    return Invalid(
        absl::StrCat("input '", spec.name, "' as UINT8 pixels: ", s.message()));
  }
  return tensor;
}

absl::StatusOr<std::vector<int>> SelectOutputs(
    const inference::ModelInferRequest& request,
    const ModelSignature& signature) {
  std::vector<int> selected;
  if (request.outputs_size() == 0) {
    for (size_t i = 0; i < signature.outputs.size(); ++i) {
      selected.push_back(static_cast<int>(i));
    }
    return selected;
  }
  std::set<std::string> seen;
  for (const auto& wanted : request.outputs()) {
    int found = -1;
    for (size_t i = 0; i < signature.outputs.size(); ++i) {
      if (signature.outputs[i].name == wanted.name()) {
        found = static_cast<int>(i);
      }
    }
    if (found < 0) {
      std::vector<std::string> names;
      for (const TensorSpec& o : signature.outputs) {
        names.push_back(absl::StrCat("'", o.name, "'"));
      }
      return Invalid(absl::StrCat(
          "output '", wanted.name(), "' is not an output of model '",
          signature.model, "'; its outputs are ", absl::StrJoin(names, ", ")));
    }
    if (!seen.insert(wanted.name()).second) {
      return Invalid(
          absl::StrCat("output '", wanted.name(), "' is requested twice"));
    }
    selected.push_back(found);
  }
  return selected;
}

void EncodeOutputs(const inference::ModelInferRequest& request,
                   const ModelSignature& signature,
                   const std::vector<int>& selected,
                   const std::vector<graph::Tensor>& outputs,
                   inference::ModelInferResponse* response) {
  const bool raw = request.raw_input_contents_size() > 0;
  for (int index : selected) {
    const graph::Tensor& t = outputs[static_cast<size_t>(index)];
    auto* out = response->add_outputs();
    out->set_name(signature.outputs[static_cast<size_t>(index)].name);
    out->set_datatype("FP32");
    for (int64_t d : t.shape) out->add_shape(d);
    if (raw) {
      std::string* bytes = response->add_raw_output_contents();
      bytes->resize(t.data.size() * sizeof(float));
      std::memcpy(bytes->data(), t.data.data(), bytes->size());
    } else {
      out->mutable_contents()->mutable_fp32_contents()->Add(t.data.begin(),
                                                            t.data.end());
    }
  }
}

}  // namespace esb::agent
