// Hostile models (core/testing/hostile.h) through the importer: each must be
// refused with its own status code and a message naming what is wrong.
#include <filesystem>
#include <fstream>

#include "core/graph/checked.h"
#include "core/graph/shapes.h"
#include "core/onnx/onnx_import.h"
#include "core/testing/hostile.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::graph {
namespace {

using ::testing::HasSubstr;

std::string WriteFile(const hostile::HostileCase& c) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "hostile_models";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / (c.name + c.extension)).string();
  std::ofstream(path, std::ios::binary) << c.bytes;
  return path;
}

TEST(HostileImportTest, TheValidBaseModelImports) {
  hostile::HostileCase c{
      "valid", ".onnx", hostile::ValidModel(), absl::StatusCode::kOk, {}};
  auto g = ImportOnnxFile(WriteFile(c));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->outputs.size(), 1u);
}

TEST(HostileImportTest, EveryHostileModelIsRefusedWithItsStatus) {
  const std::vector<hostile::HostileCase> cases = hostile::HostileModels();
  EXPECT_GE(cases.size(), 30u);
  for (const hostile::HostileCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto g = ImportOnnxFile(WriteFile(c));
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.status().code(), c.code) << g.status();
    for (const std::string& part : c.message) {
      EXPECT_THAT(std::string(g.status().message()), HasSubstr(part));
    }
  }
}

TEST(HostileImportTest, ConstantBytesBudgetIsCharged) {
  ImportOptions tight;
  tight.max_constant_bytes = 16;  // fc_w alone has 40 bytes.
  auto g = ImportOnnxBytes(hostile::ValidModel(), "", tight);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(g.status().message()),
              HasSubstr("initializer 'fc_w'"));
  EXPECT_THAT(std::string(g.status().message()),
              HasSubstr("max_constant_bytes"));
  EXPECT_TRUE(ImportOnnxBytes(hostile::ValidModel(), "").ok());
}

TEST(HostileImportTest, TensorElementBudgetIsConfigurable) {
  ImportOptions tight;
  tight.max_tensor_elements = 9;  // fc_w [1,10] has 10.
  auto g = ImportOnnxBytes(hostile::ValidModel(), "", tight);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(g.status().message()),
              HasSubstr("of 10 elements exceeds the "
                        "limit of 9 elements"));
}

TEST(HostileImportTest, InferShapesRefusesIntermediatesOverItsLimit) {
  auto g = ImportOnnxBytes(hostile::ValidModel(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  const std::map<std::string, std::vector<int64_t>> big = {
      {"x", {1 << 20, 1, 28, 28}}};
  ShapeOptions tight;
  tight.max_tensor_elements = 1 << 20;
  auto shapes = InferShapes(*g, big, tight);
  ASSERT_FALSE(shapes.ok());
  EXPECT_EQ(shapes.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(shapes.status().message()),
              HasSubstr("input 'x' [1048576,1,28,28] of 822083584 elements "
                        "exceeds the limit of 1048576"));
  EXPECT_TRUE(InferShapes(*g, big).ok());  // The default admits 822M.

  Graph no_outputs = *g;
  no_outputs.outputs.clear();
  auto none = InferShapes(no_outputs, {{"x", {1, 1, 28, 28}}});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("no outputs"));
}

TEST(CheckedTest, OverflowIsReportedNotWrapped) {
  EXPECT_EQ(CheckedMul(int64_t{1} << 31, int64_t{1} << 31), int64_t{1} << 62);
  EXPECT_EQ(CheckedMul(int64_t{1} << 32, int64_t{1} << 31), std::nullopt);
  EXPECT_EQ(CheckedAdd(INT64_MAX, 1), std::nullopt);
  EXPECT_EQ(CheckedAdd(-5, 3), -2);
  EXPECT_EQ(CheckedProduct({}), 1);
  EXPECT_EQ(CheckedProduct({2, 3, 4}), 24);
  EXPECT_EQ(CheckedProduct({2, -3}), std::nullopt);
  EXPECT_EQ(CheckedProduct({int64_t{1} << 32, int64_t{1} << 32}), std::nullopt);
  Tensor t{{int64_t{1} << 32, int64_t{1} << 32}, {}};
  EXPECT_EQ(t.CheckedSize(), std::nullopt);
  EXPECT_EQ(t.size(), -1);
  EXPECT_EQ(NumElements({int64_t{1} << 40, int64_t{1} << 40}), -1);
}

}  // namespace
}  // namespace esb::graph
