#include "core/onnx/onnx_import.h"

#include <filesystem>
#include <fstream>

#include "core/runtime/executor.h"
#include "core/runtime/reference.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace esb::graph {
namespace {

using ::testing::HasSubstr;

std::string SourceDir() { return ESB_SOURCE_DIR; }

int CountOps(const Graph& g, Op op) {
  return static_cast<int>(
      std::count_if(g.nodes.begin(), g.nodes.end(),
                    [op](const Node& n) { return n.op == op; }));
}

TEST(OnnxImportTest, DemoModels) {
  auto lenet = ImportOnnxFile(SourceDir() + "/models/lenet.onnx");
  ASSERT_TRUE(lenet.ok()) << lenet.status();
  EXPECT_EQ(lenet->inputs.size(), 1u);
  EXPECT_EQ(lenet->inputs[0].shape, (std::vector<int64_t>{kBatch, 1, 28, 28}));
  EXPECT_EQ(CountOps(*lenet, Op::kConv), 2);
  EXPECT_EQ(lenet->metadata.count("input_mean"), 1u);
  EXPECT_GE(lenet->opset, 11);

  auto resnet = ImportOnnxFile(SourceDir() + "/models/resnet.onnx");
  ASSERT_TRUE(resnet.ok()) << resnet.status();
  EXPECT_GT(CountOps(*resnet, Op::kBatchNorm), 0);
  EXPECT_GT(CountOps(*resnet, Op::kAdd), 0);
  // Every node input is a graph input, a constant or an earlier output.
  std::set<std::string> known;
  for (const auto& in : resnet->inputs) known.insert(in.name);
  for (const auto& [name, t] : resnet->constants) known.insert(name);
  for (const Node& n : resnet->nodes) {
    for (const std::string& in : n.inputs) {
      EXPECT_TRUE(known.count(in)) << n.name << " reads " << in;
    }
    for (const std::string& out : n.outputs) known.insert(out);
  }
  for (const auto& out : resnet->outputs) EXPECT_TRUE(known.count(out.name));
}

// A model built in code: input [N, 4, 6, 6] -> ops -> output.
struct ModelBuilder {
  onnx::ModelProto model;
  onnx::GraphProto* graph;

  explicit ModelBuilder(int opset = 13) {
    model.set_ir_version(7);
    auto* o = model.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    graph = model.mutable_graph();
    graph->set_name("test");
    AddValue(graph->add_input(), "x", {-1, 4, 6, 6});
  }
  static void AddValue(onnx::ValueInfoProto* v, const std::string& name,
                       const std::vector<int64_t>& dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    auto* shape = t->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d < 0) {
        dim->set_dim_param("N");
      } else {
        dim->set_dim_value(d);
      }
    }
  }
  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in,
                        std::vector<std::string> out,
                        const std::string& name = "") {
    auto* n = graph->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return n;
  }
  void Ints(const std::string& name, std::vector<int64_t> values) {
    auto* t = graph->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
  }
  void Floats(const std::string& name, std::vector<int64_t> dims, float value) {
    auto* t = graph->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    for (int64_t i = 0; i < n; ++i) t->add_float_data(value);
  }
  void Output(const std::string& name,
              const std::vector<int64_t>& dims = {-1, 4, 6, 6}) {
    AddValue(graph->add_output(), name, dims);
  }
  std::string Bytes() const { return model.SerializeAsString(); }
};

void SetIntAttr(onnx::NodeProto* node, const std::string& name, int64_t v) {
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

TEST(OnnxImportTest, NamesEveryUnsupportedNode) {
  ModelBuilder b;
  b.Node("Relu", {"x"}, {"a"}, "relu0");
  b.Node("Cos", {"a"}, {"b"}, "cos1");
  b.Node("Tanh", {"b"}, {"c"});
  b.Output("c");
  auto g = ImportOnnxBytes(b.Bytes(), "");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(g.status().message()),
              HasSubstr("2 nodes are not supported"));
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("'cos1' (op Cos)"));
  EXPECT_THAT(std::string(g.status().message()),
              HasSubstr("'Tanh_2' (op Tanh)"));
}

TEST(OnnxImportTest, RejectsOpsetsOutsideTheRange) {
  for (int opset : {10, 18}) {
    ModelBuilder b(opset);
    b.Node("Relu", {"x"}, {"y"});
    b.Output("y");
    auto g = ImportOnnxBytes(b.Bytes(), "");
    ASSERT_FALSE(g.ok());
    EXPECT_THAT(std::string(g.status().message()),
                HasSubstr("opsets 11 to 17"));
  }
}

TEST(OnnxImportTest, CorruptBytesAndMissingFiles) {
  auto g = ImportOnnxBytes("this is not a protobuf \xff\xff", "");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  auto missing = ImportOnnxFile("/nonexistent/model.onnx");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  ImportOptions small;
  small.max_model_bytes = 10;
  auto big = ImportOnnxFile(SourceDir() + "/models/lenet.onnx", small);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("external data"));
}

TEST(OnnxImportTest, CheckerFailuresAreInvalidArgument) {
  ModelBuilder b;
  b.Node("Relu", {"undefined_input"}, {"y"});
  b.Output("y");
  auto g = ImportOnnxBytes(b.Bytes(), "");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("checker"));
}

// What exporters emit for x.view(x.size(0), -1) folds into one Reshape
// whose batch entry copies the input's dim 0.
TEST(OnnxImportTest, FoldsShapeArithmeticAroundReshape) {
  ModelBuilder b;
  b.Node("Shape", {"x"}, {"s"});
  b.Ints("zero", {0});
  auto* gather = b.Node("Gather", {"s", "idx"}, {"n"});
  (void)gather;
  auto* t = b.graph->add_initializer();
  t->set_name("idx");
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_int64_data(0);  // Scalar index.
  b.Node("Unsqueeze", {"n", "zero"}, {"n1"});
  b.Ints("minus_one", {-1});
  SetIntAttr(b.Node("Concat", {"n1", "minus_one"}, {"target"}), "axis", 0);
  b.Node("Reshape", {"x", "target"}, {"y"}, "flatten");
  b.Output("y", {-1, 144});
  auto g = ImportOnnxBytes(b.Bytes(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].op, Op::kReshape);
  EXPECT_EQ(g->nodes[0].attrs.shape, (std::vector<int64_t>{0, -1}));
}

// Channel arithmetic as chunk() and channel shuffles export it: Div
// truncates, Sub subtracts, both fold; an integer division by zero is
// refused naming the node.
TEST(OnnxImportTest, FoldsIntegerDivAndSub) {
  for (const bool by_zero : {false, true}) {
    ModelBuilder b;
    b.Node("Shape", {"x"}, {"s"});
    auto* t = b.graph->add_initializer();
    t->set_name("idx");
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_int64_data(1);  // Scalar index: the channels, 4.
    b.Node("Gather", {"s", "idx"}, {"c"});
    b.Ints("zero", {0});
    b.Ints("one", {1});
    b.Ints("divisor", {by_zero ? 0 : 2});
    b.Ints("minus_one", {-1});
    b.Node("Div", {"c", "divisor"}, {"half"}, "half");
    b.Node("Sub", {"c", "one"}, {"less"}, "less");
    // Scalar op [1] broadcasts to [1].
    SetIntAttr(
        b.Node("Concat", {"zero", "half", "less", "minus_one"}, {"target"}),
        "axis", 0);
    b.Node("Reshape", {"x", "target"}, {"y"}, "split");
    b.Output("y", {-1, 2, 3, 24});
    auto g = ImportOnnxBytes(b.Bytes(), "");
    if (by_zero) {
      ASSERT_FALSE(g.ok());
      EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(g.status().message()), HasSubstr("half"));
      EXPECT_THAT(std::string(g.status().message()), HasSubstr("4 / 0"));
      continue;
    }
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_EQ(g->nodes.size(), 1u);
    EXPECT_EQ(g->nodes[0].op, Op::kReshape);
    EXPECT_EQ(g->nodes[0].attrs.shape, (std::vector<int64_t>{0, 2, 3, -1}));
  }
}

// ShuffleNet's channel split: Slice of a computed tensor becomes a crop
// (Pad with negative pads) that the executor runs; Slice of a constant
// (shape arithmetic) folds.
TEST(OnnxImportTest, SlicesCropComputedTensorsAndFoldConstants) {
  ModelBuilder b;
  b.Ints("starts", {1, -4});
  b.Ints("ends", {3, 1000});
  b.Ints("axes", {1, -1});
  b.Node("Slice", {"x", "starts", "ends", "axes"}, {"y"}, "split");
  // A second output whose shape comes from a folded Slice of Shape(x):
  // [0, x.shape[1:2], -1] = [0, 4, -1].
  b.Node("Shape", {"x"}, {"s"});
  b.Ints("one", {1});
  b.Ints("two", {2});
  b.Node("Slice", {"s", "one", "two"}, {"c"});
  b.Ints("zero", {0});
  b.Ints("minus_one", {-1});
  SetIntAttr(b.Node("Concat", {"zero", "c", "minus_one"}, {"target"}), "axis",
             0);
  b.Node("Reshape", {"x", "target"}, {"z"}, "flat");
  b.Output("y", {-1, 2, 6, 4});
  b.Output("z", {-1, 4, 36});
  auto g = ImportOnnxBytes(b.Bytes(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes.size(), 2u);
  EXPECT_EQ(g->nodes[0].op, Op::kPad);
  EXPECT_EQ(g->nodes[0].attrs.pads,
            (std::vector<int64_t>{0, -1, 0, -2, 0, -1, 0, 0}));
  EXPECT_EQ(g->nodes[1].op, Op::kReshape);
  EXPECT_EQ(g->nodes[1].attrs.shape, (std::vector<int64_t>{0, 4, -1}));

  auto executor = runtime::Executor::Create(*g);
  ASSERT_TRUE(executor.ok()) << executor.status();
  Tensor x{{2, 4, 6, 6}, {}};
  for (int64_t i = 0; i < x.size(); ++i) x.data.push_back(i);
  auto out = (*executor)->Run({x});
  ASSERT_TRUE(out.ok()) << out.status();
  const Tensor& y = (*out)[0];
  ASSERT_EQ(y.shape, (std::vector<int64_t>{2, 2, 6, 4}));
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t c = 0; c < 2; ++c) {
      for (int64_t h = 0; h < 6; ++h) {
        for (int64_t w = 0; w < 4; ++w) {
          const float want = x.data[((n * 4 + c + 1) * 6 + h) * 6 + w + 2];
          ASSERT_EQ(y.data[((n * 2 + c) * 6 + h) * 4 + w], want)
              << n << "," << c << "," << h << "," << w;
        }
      }
    }
  }
}

// A channel shuffle as torch exports it: Reshape to a 5-D shape computed
// from Shape(x), Transpose, Reshape back, then chunk()'s Slice. ONNX's shape
// inference leaves the shuffled tensors without a shape (unknown rank, not
// a scalar); the Slice still needs the channel count, which the importer
// infers from the nodes before it.
TEST(OnnxImportTest, InfersShapesOnnxLeavesOpen) {
  ModelBuilder b;
  b.Node("Shape", {"x"}, {"shape"});
  auto* index = b.graph->add_initializer();
  index->set_name("batch_index");
  index->set_data_type(onnx::TensorProto::INT64);
  index->add_int64_data(0);  // Scalar index: the batch.
  b.Node("Gather", {"shape", "batch_index"}, {"n"});
  b.Ints("zero", {0});
  b.Node("Unsqueeze", {"n", "zero"}, {"n1"});
  b.Ints("groups", {2, 2, 6, 6});
  SetIntAttr(b.Node("Concat", {"n1", "groups"}, {"five_d"}), "axis", 0);
  b.Node("Reshape", {"x", "five_d"}, {"g"}, "group");
  auto* t = b.Node("Transpose", {"g"}, {"gt"}, "shuffle");
  auto* perm = t->add_attribute();
  perm->set_name("perm");
  perm->set_type(onnx::AttributeProto::INTS);
  for (int64_t p : {0, 2, 1, 3, 4}) perm->add_ints(p);
  b.Ints("flat", {-1, 6, 6});
  SetIntAttr(b.Node("Concat", {"n1", "flat"}, {"four_d"}), "axis", 0);
  b.Node("Reshape", {"gt", "four_d"}, {"s"}, "ungroup");
  b.Ints("start", {2});
  b.Ints("end", {1000});
  b.Ints("axis", {1});
  b.Node("Slice", {"s", "start", "end", "axis"}, {"y"}, "chunk");
  b.Output("y", {-1, 2, 6, 6});
  auto g = ImportOnnxBytes(b.Bytes(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(CountOps(*g, Op::kPad), 1);

  auto executor = runtime::Executor::Create(*g);
  ASSERT_TRUE(executor.ok()) << executor.status();
  for (const int64_t batch : {1, 3}) {
    Tensor x{{batch, 4, 6, 6}, {}};
    for (int64_t i = 0; i < x.size(); ++i) x.data.push_back(i);
    auto out = (*executor)->Run({x});
    ASSERT_TRUE(out.ok()) << out.status();
    const Tensor& y = (*out)[0];
    ASSERT_EQ(y.shape, (std::vector<int64_t>{batch, 2, 6, 6}));
    // Shuffled channel order is 0, 2, 1, 3; the second half is 1, 3.
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t c = 0; c < 2; ++c) {
        const int64_t source = c == 0 ? 1 : 3;
        for (int64_t i = 0; i < 36; ++i) {
          ASSERT_EQ(y.data[(n * 2 + c) * 36 + i],
                    x.data[(n * 4 + source) * 36 + i])
              << n << "," << c << "," << i;
        }
      }
    }
  }
}

void SetStringAttr(onnx::NodeProto* node, const std::string& name,
                   const std::string& v) {
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

// torchvision's segmentation heads: Resize to sizes computed from the
// input's Shape (batch unknown at import); Split and Sum become crops and
// Adds; Expand along the batch-free dims.
TEST(OnnxImportTest, ResizeSplitSumAndExpand) {
  ModelBuilder b;
  b.Node("Shape", {"x"}, {"s"});
  b.Ints("zero", {0});
  b.Ints("two", {2});
  b.Node("Slice", {"s", "zero", "two"}, {"nc"});
  b.Ints("hw", {12, 9});
  SetIntAttr(b.Node("Concat", {"nc", "hw"}, {"sizes"}), "axis", 0);
  auto* resize = b.Node("Resize", {"x", "", "", "sizes"}, {"r"}, "up");
  SetStringAttr(resize, "mode", "linear");
  b.Ints("parts", {1, 3});
  SetIntAttr(b.Node("Split", {"r", "parts"}, {"r1", "r3"}, "split"), "axis", 1);
  b.Ints("wide", {1, 3, 1, 1});
  b.Node("Expand", {"r1", "wide"}, {"e"}, "expand");
  b.Node("Sum", {"e", "r3", "r3"}, {"y"}, "sum");
  b.Output("y", {-1, 3, 12, 9});
  auto g = ImportOnnxBytes(b.Bytes(), "");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(CountOps(*g, Op::kResize), 1);
  EXPECT_EQ(CountOps(*g, Op::kPad), 2);
  EXPECT_EQ(CountOps(*g, Op::kExpand), 1);
  EXPECT_EQ(CountOps(*g, Op::kAdd), 2);
  const Node& up = g->nodes[0];
  ASSERT_EQ(up.op, Op::kResize);
  EXPECT_EQ(up.attrs.shape, (std::vector<int64_t>{12, 9}));
  EXPECT_FLOAT_EQ(up.attrs.scales[2], 2.0f);
  EXPECT_FLOAT_EQ(up.attrs.scales[3], 1.5f);

  auto executor = runtime::Executor::Create(*g);
  ASSERT_TRUE(executor.ok()) << executor.status();
  Tensor x{{2, 4, 6, 6}, {}};
  for (int64_t i = 0; i < x.size(); ++i) x.data.push_back(0.5f * i);
  auto out = (*executor)->Run({x});
  ASSERT_TRUE(out.ok()) << out.status();
  auto want = runtime::ReferenceRun(*g, {x});
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_EQ((*out)[0].shape, (std::vector<int64_t>{2, 3, 12, 9}));
  for (int64_t i = 0; i < (*out)[0].size(); ++i) {
    ASSERT_NEAR((*out)[0].data[i], (*want)[0].data[i], 1e-4) << i;
  }
  // Linear, half_pixel: output row 0 of channel 0 samples input row 0
  // (clamped), column 1 samples (1 + 0.5) / 1.5 - 0.5 = 0.5.
  const float expanded = 0.5f * (0 * 36 + 0 + 0.5f);  // From channel 0.
  const float third = 0.5f * (3 * 36 + 0 + 0.5f);     // Channel 3.
  EXPECT_NEAR((*out)[0].data[1 + 2 * 108], expanded + 2 * third, 1e-4);
}

TEST(OnnxImportTest, RefusesResizeSplitExpandItCannotRun) {
  struct Case {
    std::string attr, value;
    std::vector<float> scales;
    std::vector<int64_t> out;
    std::string message;
  };
  // ONNX's shape inference refuses the last two first, naming the node too.
  const std::vector<Case> cases = {
      {"mode", "cubic", {1, 1, 2, 2}, {-1, 4, 12, 12}, "mode 'cubic'"},
      {"coordinate_transformation_mode",
       "tf_crop_and_resize",
       {1, 1, 2, 2},
       {-1, 4, 12, 12},
       "'tf_crop_and_resize' is not supported"},
      {"mode", "linear", {1, 2, 2, 2}, {-1, 8, 12, 12}, "only H and W"},
      {"mode", "linear", {1, 1, 0, 2}, {-1, 4, 12, 12}, "differ in dim"},
  };
  for (const Case& c : cases) {
    ModelBuilder b;
    auto* t = b.graph->add_initializer();
    t->set_name("scales");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(4);
    for (float v : c.scales) t->add_float_data(v);
    SetStringAttr(b.Node("Resize", {"x", "", "scales"}, {"y"}, "resize"),
                  c.attr, c.value);
    b.Output("y", c.out);
    auto g = ImportOnnxBytes(b.Bytes(), "");
    ASSERT_FALSE(g.ok()) << c.message;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(g.status().message()), HasSubstr("resize"));
    EXPECT_THAT(std::string(g.status().message()), HasSubstr(c.message));
  }
  {
    ModelBuilder b;
    b.Ints("parts", {1, 2});
    SetIntAttr(b.Node("Split", {"x", "parts"}, {"a", "c"}, "split"), "axis", 1);
    b.Output("a", {-1, 1, 6, 6});
    auto g = ImportOnnxBytes(b.Bytes(), "");
    ASSERT_FALSE(g.ok());
    EXPECT_THAT(std::string(g.status().message()),
                HasSubstr("node name: split"));
    EXPECT_THAT(std::string(g.status().message()), HasSubstr("sum of 'split'"));
  }
  {
    // A target dim not known at import (here the batch, read by Shape)
    // that lines up with a known dim of the input cannot be checked.
    ModelBuilder b;
    b.Node("Shape", {"x"}, {"s"});
    b.Ints("zero", {0});
    b.Ints("one", {1});
    b.Node("Slice", {"s", "zero", "one"}, {"n"});
    b.Ints("rest", {1, 4, 6});
    SetIntAttr(b.Node("Concat", {"rest", "n"}, {"target"}), "axis", 0);
    b.Node("Expand", {"x", "target"}, {"y"}, "expand");
    b.Output("y", {-1, 4, 6, 6});
    auto g = ImportOnnxBytes(b.Bytes(), "");
    ASSERT_FALSE(g.ok());
    EXPECT_THAT(std::string(g.status().message()), HasSubstr("'expand'"));
    EXPECT_THAT(std::string(g.status().message()),
                HasSubstr("does not meet the input's batch"));
  }
}

// A stepped Slice of a constant folds: Shape(x)[1::2] of [N, 4, 6, 6] is
// [4, 6], the target of a Reshape.
TEST(OnnxImportTest, FoldsSteppedSlicesOfConstants) {
  ModelBuilder b;
  b.Node("Shape", {"x"}, {"s"});
  b.Ints("start", {1});
  b.Ints("end", {4});
  b.Ints("axis", {0});
  b.Ints("step", {2});
  b.Node("Slice", {"s", "start", "end", "axis", "step"}, {"odd"});
  b.Ints("minus_one", {-1});
  SetIntAttr(b.Node("Concat", {"minus_one", "odd"}, {"target"}), "axis", 0);
  b.Node("Reshape", {"x", "target"}, {"y"}, "regroup");
  b.Output("y", {-1, 4, 6});
  auto g = ImportOnnxBytes(b.Bytes(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].attrs.shape, (std::vector<int64_t>{-1, 4, 6}));
}

TEST(OnnxImportTest, RefusesSlicesItCannotRun) {
  struct Case {
    std::vector<int64_t> starts, ends, axes, steps;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{0}, {2}, {0}, {1}, "whose size is not known"},
      {{0}, {4}, {1}, {2}, "only step 1"},
      {{3}, {0}, {1}, {-1}, "only positive steps"},
      // ONNX's shape inference refuses these first, naming the node too.
      {{0}, {4}, {4}, {1}, "axes has invalid data"},
      {{0, 0}, {1, 1}, {1, 1}, {1, 1}, "'axes' has duplicates"},
      {{0}, {1, 2}, {1}, {1}, "starts and ends"},
  };
  for (const Case& c : cases) {
    ModelBuilder b;
    b.Ints("starts", c.starts);
    b.Ints("ends", c.ends);
    b.Ints("axes", c.axes);
    b.Ints("steps", c.steps);
    b.Node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"}, "cut");
    auto* y = b.graph->add_output();  // Rank 4, no dim declared.
    y->set_name("y");
    auto* type = y->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    for (int d = 0; d < 4; ++d) type->mutable_shape()->add_dim();
    auto g = ImportOnnxBytes(b.Bytes(), "");
    ASSERT_FALSE(g.ok()) << c.message;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(g.status().message()), HasSubstr(c.message));
    EXPECT_THAT(std::string(g.status().message()), HasSubstr("cut"))
        << c.message;
  }
}

TEST(OnnxImportTest, ResolvesAutoPadAndClipBounds) {
  ModelBuilder b;
  b.Floats("w", {8, 4, 3, 3}, 0.1f);
  auto* conv = b.Node("Conv", {"x", "w"}, {"c"}, "conv");
  auto* ap = conv->add_attribute();
  ap->set_name("auto_pad");
  ap->set_type(onnx::AttributeProto::STRING);
  ap->set_s("SAME_UPPER");
  auto* st = conv->add_attribute();
  st->set_name("strides");
  st->set_type(onnx::AttributeProto::INTS);
  st->add_ints(2);
  st->add_ints(2);
  b.Floats("lo", {}, 0.0f);
  b.Floats("hi", {}, 6.0f);
  b.Node("Clip", {"c", "lo", "hi"}, {"y"}, "relu6");
  b.Output("y", {-1, 8, 3, 3});
  auto g = ImportOnnxBytes(b.Bytes(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes.size(), 2u);
  // in 6, stride 2 -> out 3; total pad = (3-1)*2 + 3 - 6 = 1, extra at end.
  EXPECT_EQ(g->nodes[0].attrs.pads, (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(g->nodes[1].attrs.min, 0.0f);
  EXPECT_EQ(g->nodes[1].attrs.max, 6.0f);
  EXPECT_EQ(g->constants.count("w"), 1u);
}

TEST(OnnxImportTest, ExternalDataIsReadAndPathsAreChecked) {
  const std::filesystem::path dir =
      std::filesystem::path(testing::TempDir()) / "external_model";
  std::filesystem::create_directories(dir);
  const std::vector<float> weights(8 * 4, 0.5f);
  std::ofstream(dir / "weights.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(weights.data()),
             static_cast<std::streamsize>(weights.size() * 4));
  auto build = [&](const std::string& location) {
    ModelBuilder b;
    auto* t = b.graph->add_initializer();
    t->set_name("w");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(8);
    t->add_dims(4);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location");
    e->set_value(location);
    b.Node("Flatten", {"x"}, {"f"});
    b.Node("Gemm", {"f", "w"}, {"y"}, "fc");
    // Flatten gives [N, 144]; use a matching weight shape instead.
    return b;
  };
  // Gemm needs [144, K]; build the weight to match.
  ModelBuilder b = build("weights.bin");
  auto* t = b.graph->mutable_initializer(0);
  t->clear_dims();
  t->add_dims(144);
  t->add_dims(8);
  const std::vector<float> big(144 * 8, 0.25f);
  std::ofstream(dir / "big.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(big.data()),
             static_cast<std::streamsize>(big.size() * 4));
  t->mutable_external_data(0)->set_value("big.bin");
  b.Output("y", {-1, 8});
  std::ofstream(dir / "model.onnx", std::ios::binary) << b.Bytes();
  auto g = ImportOnnxFile((dir / "model.onnx").string());
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->constants.at("w").data.size(), 144u * 8);
  EXPECT_EQ(g->constants.at("w").data[100], 0.25f);

  t->mutable_external_data(0)->set_value("../escape.bin");
  std::ofstream(dir / "bad.onnx", std::ios::binary) << b.Bytes();
  auto bad = ImportOnnxFile((dir / "bad.onnx").string());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("inside the model's folder"));
}

TEST(OnnxImportTest, NonFloatInputsAndFreeSpatialDimsAreRefused) {
  ModelBuilder b;
  b.graph->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(2)
      ->set_dim_param("H");
  b.Node("Relu", {"x"}, {"y"});
  b.Output("y");
  auto g = ImportOnnxBytes(b.Bytes(), "");
  EXPECT_THAT(std::string(g.status().message()),
              HasSubstr("dimension 2 is not fixed"));
}

}  // namespace
}  // namespace esb::graph
