#include "core/testing/hostile.h"

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"
#include "onnx/onnx_pb.h"

namespace esb::hostile {
namespace {

using Code = absl::StatusCode;
using Dims = std::vector<int64_t>;

constexpr int64_t kDynamic = -1;  // A dim_param ("N") in a value's shape.

// A model under construction: input 'x' [N,1,28,28] unless replaced.
class Builder {
 public:
  explicit Builder(int opset = 13) {
    model_.set_ir_version(8);
    auto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    g_ = model_.mutable_graph();
    g_->set_name("hostile");
  }

  onnx::ModelProto& model() { return model_; }
  onnx::GraphProto& graph() { return *g_; }

  void Input(const std::string& name, const Dims& dims, bool has_shape = true) {
    Value(g_->add_input(), name, dims, has_shape);
  }
  void Output(const std::string& name, const Dims& dims) {
    Value(g_->add_output(), name, dims, true);
  }
  onnx::TensorProto* Init(const std::string& name, const Dims& dims,
                          const std::vector<float>& values) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
    return t;
  }
  // An int64 initializer.
  void Ints(const std::string& name, const Dims& values) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
  }
  onnx::NodeProto* Node(const std::string& op, const std::string& name,
                        std::initializer_list<std::string> in,
                        std::initializer_list<std::string> out) {
    auto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& s : in) n->add_input(s);
    for (const auto& s : out) n->add_output(s);
    return n;
  }
  static void AttrInts(onnx::NodeProto* n, const std::string& name,
                       const Dims& values) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }
  static void AttrInt(onnx::NodeProto* n, const std::string& name,
                      int64_t value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }

  // GlobalAveragePool(from) -> Flatten -> Gemm to 10 classes -> 'y'.
  void Tail(const std::string& from, int64_t channels) {
    Node("GlobalAveragePool", "gap", {from}, {"pooled"});
    Node("Flatten", "flatten", {"pooled"}, {"flat"});
    Init("fc_w", {channels, 10}, std::vector<float>(channels * 10, 0.1f));
    Init("fc_b", {10}, std::vector<float>(10, 0.0f));
    Node("Gemm", "fc", {"flat", "fc_w", "fc_b"}, {"y"});
    Output("y", {kDynamic, 10});
  }

  std::string Bytes() const { return model_.SerializeAsString(); }

 private:
  static void Value(onnx::ValueInfoProto* v, const std::string& name,
                    const Dims& dims, bool has_shape) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    if (!has_shape) return;
    auto* shape = t->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d == kDynamic) {
        dim->set_dim_param("N");
      } else {
        dim->set_dim_value(d);
      }
    }
  }

  onnx::ModelProto model_;
  onnx::GraphProto* g_;
};

const Dims kImage = {kDynamic, 1, 28, 28};

// x -> Conv('conv', weights `w_dims`, attributes set by `attrs`) -> tail.
std::string ConvModel(const Dims& w_dims,
                      const std::function<void(onnx::NodeProto*)>& attrs) {
  Builder b;
  b.Input("x", kImage);
  int64_t count = 1;
  for (int64_t d : w_dims) count *= d;
  b.Init("w", w_dims, std::vector<float>(count, 0.5f));
  attrs(b.Node("Conv", "conv", {"x", "w"}, {"h"}));
  b.Tail("h", w_dims[0]);
  return b.Bytes();
}

// x -> MaxPool('pool') with `attrs` -> tail.
std::string PoolModel(const std::function<void(onnx::NodeProto*)>& attrs) {
  Builder b;
  b.Input("x", kImage);
  attrs(b.Node("MaxPool", "pool", {"x"}, {"h"}));
  b.Tail("h", 1);
  return b.Bytes();
}

// x -> Reshape('reshape', int64 target) -> Relu -> ... -> 'y' declared with
// the target's rank: the shape arithmetic is what is wrong.
std::string ReshapeModel(const Dims& target) {
  Builder b;
  b.Input("x", kImage);
  b.Ints("target", target);
  b.Node("Reshape", "reshape", {"x", "target"}, {"h"});
  b.Tail("h", 1);
  return b.Bytes();
}

void Add(std::vector<HostileCase>& cases, std::string name, std::string bytes,
         Code code, std::vector<std::string> message,
         std::string extension = ".onnx") {
  cases.push_back(HostileCase{std::move(name), std::move(extension),
                              std::move(bytes), code, std::move(message)});
}

void AddStructural(std::vector<HostileCase>& cases) {
  {
    Builder b;
    b.Input("x", kImage);
    b.Node("Relu", "relu", {"x"}, {"y"});
    Add(cases, "no_outputs", b.Bytes(), Code::kInvalidArgument,
        {"declares no outputs"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Tail("x", 1);
    b.Output("ghost", {kDynamic, 10});
    Add(cases, "output_not_produced", b.Bytes(), Code::kInvalidArgument,
        {"graph output 'ghost'", "not produced"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Tail("x", 1);
    b.Output("y", {kDynamic, 10});
    Add(cases, "duplicate_output", b.Bytes(), Code::kInvalidArgument,
        {"output 'y'", "more than once"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Node("Relu", "relu1", {"x"}, {"h"});
    b.Node("Relu", "relu2", {"x"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "duplicate_value", b.Bytes(), Code::kInvalidArgument,
        {"SSA", "'h'"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Node("Relu", "late", {"h0"}, {"h"});
    b.Node("Relu", "early", {"x"}, {"h0"});
    b.Tail("h", 1);
    Add(cases, "not_topological", b.Bytes(), Code::kInvalidArgument,
        {"topologically sorted", "'h0'"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Node("Add", "loop", {"x", "h"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "cycle", b.Bytes(), Code::kInvalidArgument,
        {"topologically sorted", "'h'"});
  }
  {
    Builder b;
    b.Input("x", {});
    b.Tail("x", 1);
    Add(cases, "input_rank0", b.Bytes(), Code::kInvalidArgument,
        {"input 'x'", "rank 0"});
  }
  {
    Builder b;
    b.Input("x", {kDynamic, 1, 0, 28});
    b.Tail("x", 1);
    Add(cases, "input_zero_dim", b.Bytes(), Code::kInvalidArgument,
        {"input 'x'", "dimension 2 is 0"});
  }
  {
    Builder b;
    b.Input("x", {1, 1, int64_t{1} << 20, int64_t{1} << 20});
    b.Tail("x", 1);
    Add(cases, "input_huge", b.Bytes(), Code::kResourceExhausted,
        {"input 'x'", "1099511627776 elements", "268435456",
         "max_tensor_elements"});
  }
  {
    Builder b;
    b.Input("x", kImage, /*has_shape=*/false);
    b.Tail("x", 1);
    Add(cases, "input_no_shape", b.Bytes(), Code::kInvalidArgument,
        {"'shape'", "missing"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Node("Relu", "relu", {"x"}, {"h"});
    b.Tail("h", 1);
    b.Input("x", kImage);
    Add(cases, "duplicate_input", b.Bytes(), Code::kInvalidArgument,
        {"SSA", "'x'"});
  }
  {
    Builder b(99);
    b.Input("x", kImage);
    b.Tail("x", 1);
    Add(cases, "opset_99", b.Bytes(), Code::kInvalidArgument, {"opset 99"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Node("Cos", "cos", {"x"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "unsupported_op", b.Bytes(), Code::kInvalidArgument,
        {"'cos' (op Cos)"});
  }
  Add(cases, "not_protobuf", std::string("\xff\xff\xff\xff garbage", 12),
      Code::kInvalidArgument, {"protobuf parsing failed"});
  {
    const std::string valid = ValidModel();
    Add(cases, "truncated", valid.substr(0, valid.size() / 2),
        Code::kInvalidArgument, {"protobuf parsing failed"});
  }
}

void AddTensors(std::vector<HostileCase>& cases) {
  {
    Builder b;
    b.Input("x", kImage);
    b.Tail("x", 1);
    // (2^32 + 1)^2 * 2 wraps to a small number in unchecked int64.
    auto* t = b.Init("spare",
                     {(int64_t{1} << 32) + 1, (int64_t{1} << 32) + 1, 2}, {});
    t->set_raw_data(std::string(8, '\0'));
    Add(cases, "initializer_dims_overflow", b.Bytes(), Code::kResourceExhausted,
        {"initializer 'spare'", "more elements than an int64 holds"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Tail("x", 1);
    auto* t = b.Init("spare", {int64_t{1} << 15, int64_t{1} << 15}, {});
    t->set_raw_data(std::string(8, '\0'));
    Add(cases, "initializer_huge", b.Bytes(), Code::kResourceExhausted,
        {"initializer 'spare'", "1073741824 elements", "268435456"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Tail("x", 1);
    b.graph().mutable_initializer(1)->add_float_data(1.0f);
    Add(cases, "initializer_count_mismatch", b.Bytes(), Code::kInvalidArgument,
        {"fc_b", "11 values"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Node("Constant", "big", {}, {"c"});
    auto* n = b.graph().mutable_node(0);
    auto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
    a->mutable_t()->add_dims(int64_t{1} << 40);
    a->mutable_t()->set_raw_data(std::string(4, '\0'));
    b.Tail("x", 1);
    b.Output("c", {int64_t{1} << 40});
    Add(cases, "constant_huge", b.Bytes(), Code::kResourceExhausted,
        {"node 'big' (Constant)", "1099511627776 elements", "268435456"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Tail("x", 1);
    b.Ints("dims", {int64_t{1} << 20, int64_t{1} << 20, 1, 4});
    b.Node("ConstantOfShape", "cos", {"dims"}, {"c"});
    b.Output("c", {int64_t{1} << 20, int64_t{1} << 20, 1, 4});
    Add(cases, "constant_of_shape_huge", b.Bytes(), Code::kResourceExhausted,
        {"node 'cos' (ConstantOfShape)", "4398046511104 elements", "268435456",
         "ImportOptions.max_tensor_elements"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Tail("x", 1);
    b.Ints("dims", {int64_t{1} << 40, int64_t{1} << 40});
    b.Node("ConstantOfShape", "cos", {"dims"}, {"c"});
    b.Output("c", {int64_t{1} << 40, int64_t{1} << 40});
    Add(cases, "constant_of_shape_overflow", b.Bytes(),
        Code::kResourceExhausted, {"node 'cos' (ConstantOfShape)", "2^63"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Ints("a", {int64_t{1} << 62});
    b.Ints("four", {4});
    b.Node("Mul", "mul", {"a", "four"}, {"m"});
    b.Node("Reshape", "reshape", {"x", "m"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "shape_mul_overflow", b.Bytes(), Code::kInvalidArgument,
        {"node 'mul' (Mul)", "overflows int64"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Node("Shape", "shape", {"x"}, {"s"});
    b.Ints("nine", {9});
    b.Node("Gather", "gather", {"s", "nine"}, {"g"});
    b.Node("Reshape", "reshape", {"x", "g"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "gather_out_of_range", b.Bytes(), Code::kInvalidArgument,
        {"node name: gather", "indices must be in"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    auto* t = b.Init("ext", {4}, {});
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location");
    e->set_value("../../../etc/passwd");
    b.Node("Add", "add", {"x", "ext"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "external_escapes", b.Bytes(), Code::kInvalidArgument,
        {"initializer 'ext'", "relative path inside"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    auto* t = b.Init("ext", {4}, {});
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location");
    e->set_value("external_offset_overflow.onnx");  // This very file.
    e = t->add_external_data();
    e->set_key("offset");
    e->set_value("9223372036854775800");
    e = t->add_external_data();
    e->set_key("length");
    e->set_value("16");
    b.Node("Add", "add", {"x", "ext"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "external_offset_overflow", b.Bytes(), Code::kInvalidArgument,
        {"initializer 'ext'", "offset 9223372036854775800 lies outside"});
  }
}

void AddOps(std::vector<HostileCase>& cases) {
  {
    Builder b;
    b.Input("x", kImage);
    b.Ints("pads", {0, 0, 50000, 50000, 0, 0, 49976, 49976});
    b.Node("Pad", "pad", {"x", "pads"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "pad_huge", b.Bytes(), Code::kResourceExhausted,
        {"node 'pad' (Pad)", "10000800016 elements", "268435456",
         "max_tensor_elements"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Ints("pads", {0, 0, int64_t{1} << 62, 0, 0, 0, int64_t{1} << 62, 0});
    b.Node("Pad", "pad", {"x", "pads"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "pad_overflow", b.Bytes(), Code::kInvalidArgument,
        {"node 'pad' (Pad)", "overflow"});
  }
  Add(cases, "conv_group_zero",
      ConvModel({2, 1, 3, 3},
                [](onnx::NodeProto* n) { Builder::AttrInt(n, "group", 0); }),
      Code::kInvalidArgument, {"node 'conv' (Conv)", "group [0]"});
  Add(cases, "conv_stride_zero",
      ConvModel({2, 1, 3, 3},
                [](onnx::NodeProto* n) {
                  Builder::AttrInts(n, "strides", {0, 0});
                }),
      Code::kInvalidArgument, {"node 'conv' (Conv)", "strides [0, 0]"});
  Add(cases, "conv_dilation_huge",
      ConvModel({2, 1, 3, 3},
                [](onnx::NodeProto* n) {
                  Builder::AttrInts(n, "dilations",
                                    {int64_t{1} << 62, int64_t{1} << 62});
                }),
      Code::kInvalidArgument,
      {"node 'conv' (Conv)", "overflows", "dilation 4611686018427387904"});
  Add(cases, "conv_kernel_too_large",
      ConvModel({1, 1, 40, 40}, [](onnx::NodeProto*) {}),
      Code::kInvalidArgument,
      {"node 'conv' (Conv)", "window 40", "larger than the padded input 28"});
  Add(cases, "conv_channels_mismatch",
      ConvModel({2, 3, 3, 3}, [](onnx::NodeProto*) {}), Code::kInvalidArgument,
      {"node 'conv' (Conv)", "1 channels but the weight expects 3"});
  Add(cases, "conv_zero_channels",
      ConvModel({0, 1, 3, 3}, [](onnx::NodeProto*) {}), Code::kInvalidArgument,
      {"node 'conv' (Conv)", "[0, 1, 3, 3]", "zero-sized weights"});
  Add(cases, "pool_kernel_negative", PoolModel([](onnx::NodeProto* n) {
        Builder::AttrInts(n, "kernel_shape", {-3, -3});
      }),
      Code::kInvalidArgument,
      {"node 'pool' (MaxPool)", "kernel_shape [-3, -3]"});
  Add(cases, "pool_pads_huge", PoolModel([](onnx::NodeProto* n) {
        Builder::AttrInts(n, "kernel_shape", {2, 2});
        const int64_t p = int64_t{1} << 62;
        Builder::AttrInts(n, "pads", {p, p, p, p});
      }),
      Code::kInvalidArgument, {"node 'pool' (MaxPool)", "overflows"});
  Add(cases, "reshape_overflow",
      ReshapeModel({int64_t{1} << 40, int64_t{1} << 40, 1, 1}),
      Code::kInvalidArgument,
      {"node 'reshape' (Reshape)", "more elements than an int64 holds"});
  Add(cases, "reshape_two_inferred", ReshapeModel({-1, -1, 1, 1}),
      Code::kInvalidArgument, {"node name: reshape", "multiple -1"});
  {
    Builder b;
    b.Input("x", kImage);
    auto* n = b.Node("Concat", "concat", {"x", "x"}, {"h"});
    Builder::AttrInt(n, "axis", 7);
    b.Tail("h", 2);
    Add(cases, "concat_axis_out_of_range", b.Bytes(), Code::kInvalidArgument,
        {"node name: concat", "axis must be in"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Ints("a", {1, 2, 3});
    auto* t = b.graph().mutable_initializer(0);
    t->clear_dims();
    t->add_dims(3);
    t->add_dims(1);
    b.Ints("c", {4, 5});
    b.graph().mutable_initializer(1)->clear_dims();
    b.graph().mutable_initializer(1)->add_dims(1);
    b.graph().mutable_initializer(1)->add_dims(2);
    auto* n = b.Node("Concat", "concat", {"a", "c"}, {"s"});
    Builder::AttrInt(n, "axis", 0);
    b.Node("Reshape", "reshape", {"x", "s"}, {"h"});
    b.Tail("h", 1);
    Add(cases, "concat_const_mismatch", b.Bytes(), Code::kInvalidArgument,
        {"node name: concat", "differ"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    auto* n = b.Node("Transpose", "transpose", {"x"}, {"h"});
    Builder::AttrInts(n, "perm", {0, 0, 1, 2});
    b.Tail("h", 1);
    Add(cases, "transpose_bad_perm", b.Bytes(), Code::kInvalidArgument,
        {"node name: transpose", "repeated value"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    auto* n = b.Node("Flatten", "flatten0", {"x"}, {"h"});
    Builder::AttrInt(n, "axis", 9);
    b.Node("Relu", "relu", {"h"}, {"y"});
    b.Output("y", {kDynamic, 784});
    Add(cases, "flatten_axis_out_of_range", b.Bytes(), Code::kInvalidArgument,
        {"node name: flatten0", "'axis'"});
  }
  {
    Builder b;
    b.Input("x", kImage);
    b.Tail("x", 1);
    auto* w = b.graph().mutable_initializer(0);
    w->clear_dims();
    w->add_dims(10);
    w->add_dims(1);
    Add(cases, "gemm_k_mismatch", b.Bytes(), Code::kInvalidArgument,
        {"node name: fc", "differ"});
  }
}

}  // namespace

std::string ValidModel() {
  Builder b;
  b.Input("x", kImage);
  b.Tail("x", 1);
  return b.Bytes();
}

std::vector<HostileCase> HostileModels() {
  std::vector<HostileCase> cases;
  AddStructural(cases);
  AddTensors(cases);
  AddOps(cases);
  return cases;
}

namespace {

std::string BigEndian32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string IdxHeader(uint8_t type, const std::vector<uint32_t>& dims) {
  std::string h = {0, 0, static_cast<char>(type),
                   static_cast<char>(dims.size())};
  for (uint32_t d : dims) h += BigEndian32(d);
  return h;
}

std::string Gzip(const std::string& raw) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, raw.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string NpyFile(const std::string& header_dict, const std::string& data,
                    int header_len_override = -1) {
  std::string h = header_dict;
  h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
  h.push_back('\n');
  const int len = header_len_override >= 0 ? header_len_override
                                           : static_cast<int>(h.size());
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  return out + h + data;
}

}  // namespace

std::vector<HostileCase> HostileIdxFiles() {
  std::vector<HostileCase> cases;
  const std::string images =
      IdxHeader(0x08, {2, 28, 28}) + std::string(size_t{2} * 28 * 28, '\x10');
  Add(cases, "idx_dims_overflow",
      IdxHeader(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}),
      Code::kInvalidArgument, {"more than 1 TiB"}, ".idx");
  Add(cases, "idx_exceeds_file",
      IdxHeader(0x08, {10000, 28, 28}) + std::string(100, '\0'),
      Code::kInvalidArgument, {"10000 x 28 x 28", "the file holds 100"},
      ".idx");
  Add(cases, "idx_too_long", images + "extra", Code::kInvalidArgument,
      {"the file holds 1573"}, ".idx");
  Add(cases, "idx_bad_magic", "\x01\x02\x08\x03" + images.substr(4),
      Code::kInvalidArgument, {"bad magic"}, ".idx");
  Add(cases, "idx_rank0", IdxHeader(0x08, {}), Code::kInvalidArgument,
      {"rank is 0"}, ".idx");
  Add(cases, "idx_float_type", IdxHeader(0x0D, {1, 28, 28}),
      Code::kInvalidArgument, {"0x0d (float32)"}, ".idx");
  Add(cases, "idx_header_truncated", IdxHeader(0x08, {2, 28, 28}).substr(0, 9),
      Code::kInvalidArgument, {"header is truncated"}, ".idx");
  {
    const std::string gz = Gzip(images);
    Add(cases, "idx_gzip_truncated", gz.substr(0, gz.size() / 2),
        Code::kInvalidArgument, {"truncated"}, ".idx.gz");
    std::string corrupt = gz;
    corrupt[corrupt.size() - 6] ^= 0x5a;  // Inside the CRC-32 trailer.
    Add(cases, "idx_gzip_bad_crc", corrupt, Code::kInvalidArgument,
        {"corrupt gzip data"}, ".idx.gz");
  }
  Add(cases, "idx_wrong_geometry",
      IdxHeader(0x08, {2, 32, 32}) + std::string(size_t{2} * 32 * 32, '\x10'),
      Code::kInvalidArgument, {"2 x 32 x 32", "do not fit the model input"},
      ".idx");
  return cases;
}

std::vector<HostileCase> HostileNpyFiles() {
  std::vector<HostileCase> cases;
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, ";
  Add(cases, "npy_shape_overflow",
      NpyFile(f4 + "'shape': (4294967296, 4294967296, 4294967296), }", ""),
      Code::kInvalidArgument,
      {"shape (4294967296, 4294967296, 4294967296) is too large"}, ".npy");
  Add(cases, "npy_fortran",
      NpyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
              std::string(4, '\0')),
      Code::kInvalidArgument, {"Fortran-order"}, ".npy");
  Add(cases, "npy_float64",
      NpyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
              std::string(8, '\0')),
      Code::kInvalidArgument, {"dtype '<f8'"}, ".npy");
  Add(cases, "npy_header_past_end", NpyFile(f4 + "'shape': (1,), }", "", 60000),
      Code::kInvalidArgument, {"truncated header"}, ".npy");
  Add(cases, "npy_data_short",
      NpyFile(f4 + "'shape': (2, 3), }", std::string(8, '\0')),
      Code::kInvalidArgument, {"needs 24 data bytes", "holds 8"}, ".npy");
  Add(cases, "npy_negative_dim", NpyFile(f4 + "'shape': (-2, 3), }", ""),
      Code::kInvalidArgument, {"shape entry '-2'"}, ".npy");
  Add(cases, "npy_no_shape",
      NpyFile("{'descr': '<f4', 'fortran_order': "
              "False, }",
              ""),
      Code::kInvalidArgument, {"no 'shape' key"}, ".npy");
  Add(cases, "npy_bad_magic", std::string("\x93NUMPZ\x01\x00\x00\x00", 10),
      Code::kInvalidArgument, {"magic"}, ".npy");
  return cases;
}

}  // namespace esb::hostile
