#include "core/data/npy.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/env/fault_env.h"
#include "core/env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::HasSubstr;

TEST(NpyTest, RoundTripsFloat32) {
  const std::vector<float> values = {1.5f, -2.0f, 0.0f, 3.25f, 7.0f, -0.5f};
  const std::vector<int64_t> shape = {2, 3};
  const std::string bytes = SerializeNpy(values, shape);
  EXPECT_EQ((bytes.size() - values.size() * 4) % 64, 0u);
  auto array = ParseNpy(bytes, "mem");
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->shape, shape);
  EXPECT_EQ(array->f32, values);
  EXPECT_EQ(array->size(), 6);

  auto one_d = ParseNpy(SerializeNpy(values, std::vector<int64_t>{6}), "m");
  ASSERT_TRUE(one_d.ok());
  EXPECT_EQ(one_d->shape, std::vector<int64_t>{6});
}

std::string Header(absl::string_view dict, int version = 1) {
  std::string h(dict);
  h.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(version));
  out.push_back('\0');
  if (version == 1) {
    out.push_back(static_cast<char>(h.size()));
    out.push_back('\0');
  } else {
    out.push_back(static_cast<char>(h.size()));
    out.append(3, '\0');
  }
  return out + h;
}

TEST(NpyTest, ReadsUint8AndVersion2) {
  const std::string bytes =
      Header("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", 2) +
      std::string("\x01\x02\x03\xff", 4);
  auto array = ParseNpy(bytes, "u8");
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->dtype, NpyArray::DType::kUInt8);
  EXPECT_EQ(array->u8, (std::vector<uint8_t>{1, 2, 3, 255}));
}

TEST(NpyTest, CorruptFilesNameTheProblem) {
  auto no_magic = ParseNpy("hello world, not numpy", "x.npy");
  EXPECT_EQ(no_magic.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_magic.status().message(), HasSubstr("x.npy"));
  EXPECT_THAT(no_magic.status().message(), HasSubstr("magic"));

  const std::string f64 =
      Header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }") +
      std::string(8, '\0');
  EXPECT_THAT(ParseNpy(f64, "d.npy").status().message(), HasSubstr("'<f8'"));

  const std::string fortran =
      Header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }") +
      std::string(4, '\0');
  EXPECT_THAT(ParseNpy(fortran, "f.npy").status().message(),
              HasSubstr("Fortran"));

  const std::string truncated =
      Header("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }") +
      std::string(12, '\0');
  EXPECT_THAT(ParseNpy(truncated, "t.npy").status().message(),
              HasSubstr("needs 16 data bytes"));
}

TEST(NpyTest, MissingFileIsNotFound) {
  auto r = ReadNpy("/nonexistent/dir/a.npy");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/dir/a.npy"));
}

class NpyEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (size_t i = 0; i < values_.size(); ++i) {
      values_[i] = 0.5f * static_cast<float>(i) - 100.0f;
    }
    ASSERT_TRUE(mem_->CreateDirs("/d").ok());
    ASSERT_TRUE(
        WriteFileAtomically(mem_.get(), path_, SerializeNpy(values_, {4, 100}))
            .ok());
  }
  std::vector<float> values_ = std::vector<float>(400);
  const std::string path_ = "/d/x.npy";
  std::unique_ptr<Env> mem_ = NewMemEnv();
  FaultInjectionEnv faults_{mem_.get()};
};

TEST_F(NpyEnvTest, ReadsFromMemory) {
  auto array = ReadNpy(path_, mem_.get());
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->shape, (std::vector<int64_t>{4, 100}));
  EXPECT_EQ(array->f32, values_);
  auto missing = ReadNpy("/d/y.npy", mem_.get());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/d/y.npy"));
  // Parse errors name the file as ParseNpy's do.
  ASSERT_TRUE(WriteFileAtomically(mem_.get(), "/d/t.npy", "\x93NUMPY").ok());
  auto bad = ReadNpy("/d/t.npy", mem_.get());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("/d/t.npy: not a supported .npy array"));
}

TEST_F(NpyEnvTest, ShortReadsStillReadTheWholeFile) {
  faults_.SetMaxReadBytes(33);
  auto array = ReadNpy(path_, &faults_);
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->f32, values_);
}

TEST_F(NpyEnvTest, FailedAndCutReadsAreDataLossNamingTheFile) {
  faults_.SetFailReads(true);
  auto failed = ReadNpy(path_, &faults_);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(failed.status().message(), HasSubstr(path_ + ": read failed"));
  faults_.SetFailReads(false);
  // Cut in the data after it was opened: an error, never a short array.
  faults_.SetFilesEndAt(1000);
  auto cut = ReadNpy(path_, &faults_);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  const uint64_t size = *mem_->GetFileSize(path_);
  EXPECT_THAT(
      cut.status().message(),
      HasSubstr(absl::StrCat(path_, ": ends at byte 1000 while reading ", size,
                             " (it shrank)")));
}

}  // namespace
}  // namespace esb::data
