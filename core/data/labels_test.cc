#include "core/data/labels.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  const std::string path = std::string(::testing::TempDir()) + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(LabelsTest, ReadsTextWithOneIntegerPerLine) {
  const std::string path = WriteTemp("labels.txt", "3\n 999 \n0\n");
  auto labels = ReadLabelFile(path, -1);
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_THAT(*labels, ElementsAre(3, 999, 0));
  labels = ReadLabelFile(path, 2);
  ASSERT_TRUE(labels.ok());
  EXPECT_THAT(*labels, ElementsAre(3, 999));
}

TEST(LabelsTest, ReadsIdxLabels) {
  const std::string path = WriteTemp(
      "labels.idx",
      std::string("\x00\x00\x08\x01\x00\x00\x00\x03\x07\x00\x02", 11));
  auto labels = ReadLabelFile(path, -1);
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_THAT(*labels, ElementsAre(7, 0, 2));
  auto fashion = ReadLabelFile(
      "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", 4);
  ASSERT_TRUE(fashion.ok()) << fashion.status();
  EXPECT_EQ(fashion->size(), 4u);
}

TEST(LabelsTest, BadLinesAndShapesAreNamed) {
  const std::string path = WriteTemp("bad_labels.txt", "1\n2\ncat\n");
  auto labels = ReadLabelFile(path, -1);
  EXPECT_EQ(labels.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(labels.status().message()),
              HasSubstr("bad_labels.txt: line 3 'cat'"));
  EXPECT_EQ(ReadLabelFile(WriteTemp("neg.txt", "-1\n"), -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string images = WriteTemp(
      "images.idx",
      std::string("\x00\x00\x08\x02\x00\x00\x00\x01\x00\x00\x00\x01\x05", 13));
  auto idx = ReadLabelFile(images, -1);
  EXPECT_EQ(idx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(idx.status().message()), HasSubstr("1-D"));
  EXPECT_EQ(ReadLabelFile("/nonexistent/labels.txt", -1).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace esb::data
