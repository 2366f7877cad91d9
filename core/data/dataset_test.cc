#include "core/data/dataset.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/data/image_encode.h"
#include "core/data/npy.h"
#include "core/data/tar.h"
#include "core/env/fault_env.h"
#include "core/env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kImages[] =
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const ImageGeometry kMnist{"input", 1, 28, 28};

std::string Temp(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/dataset_", name);
}

void Put(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// A 32 x 32 grey image whose 28 x 28 centre is `pixels` (28 x 28) and
// whose 2-pixel border is 0: it resizes to itself and crops to `pixels`.
DecodedImage Padded(const uint8_t* pixels) {
  DecodedImage image{32, 32, 1, std::vector<uint8_t>(32 * 32, 0)};
  for (int y = 0; y < 28; ++y) {
    std::copy_n(pixels + y * 28, 28, &image.pixels[(y + 2) * 32 + 2]);
  }
  return image;
}

// The first `n` Fashion-MNIST test images, raw.
RawImages FirstImages(int64_t n) {
  auto raw = ReadRawImagesFor(kImages, n, kMnist);
  EXPECT_TRUE(raw.ok()) << raw.status();
  return *raw;
}

std::string Png(const DecodedImage& image) {
  auto png = EncodePng(image);
  EXPECT_TRUE(png.ok()) << png.status();
  return *png;
}

std::vector<float> All(const Dataset& d) {
  auto images = d.ImageRange(0, d.count());
  EXPECT_TRUE(images.ok()) << images.status();
  return images.ok() ? *images : std::vector<float>{};
}

const Normalization kNorm{{0.5f}, {0.25f}};

DatasetOptions Limit(int64_t n) {
  DatasetOptions options;
  options.limit = n;
  return options;
}

DatasetOptions WithLabels(const std::string& path) {
  DatasetOptions options;
  options.labels_path = path;
  return options;
}

TEST(DatasetTest, IdxIsNormalizedAsReadImagesFor) {
  int64_t count = 0;
  auto expected = ReadImagesFor(kImages, 6, kMnist, kNorm, &count);
  ASSERT_TRUE(expected.ok());
  DatasetOptions options;
  options.limit = 6;
  auto d = Dataset::Open(kImages, kMnist, kNorm, options);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->format(), Dataset::Format::kIdx);
  EXPECT_EQ((*d)->count(), 6);
  EXPECT_FALSE((*d)->has_labels());
  EXPECT_EQ(All(**d), *expected);
  auto picked = (*d)->Images(std::vector<int64_t>{4, 1});
  ASSERT_TRUE(picked.ok());
  EXPECT_TRUE(std::equal(picked->begin(), picked->begin() + 784,
                         expected->begin() + 4 * 784));
  EXPECT_EQ((*d)->Images(std::vector<int64_t>{6}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DatasetTest, Float32NpyIsFedAsIs) {
  std::vector<float> values(3 * 1 * 28 * 28);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.01f * i - 3.0f;
  const std::string path = Temp("f32.npy");
  Put(path, SerializeNpy(values, std::vector<int64_t>{3, 1, 28, 28}));
  auto d = Dataset::Open(path, kMnist, kNorm);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->format(), Dataset::Format::kNpy);
  EXPECT_EQ((*d)->count(), 3);
  EXPECT_EQ(All(**d), values);  // No normalization.
  auto second = (*d)->Images(std::vector<int64_t>{1});
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(std::equal(second->begin(), second->end(), values.begin() + 784));

  auto wrong = Dataset::Open(path, {"image", 3, 32, 32}, kNorm);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("f32.npy: a float32 array of shape 3 x 1 x 28 x 28 "
                        "does not fit: the model input 'image' takes N x 3 x "
                        "32 x 32"));
}

TEST(DatasetTest, Uint8NpyIsNormalizedAsIdxPixels) {
  const RawImages raw = FirstImages(4);
  // A uint8 .npy N x H x W, written by hand (SerializeNpy writes float32).
  std::string header =
      "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 28, 28), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header.push_back('\n');
  std::string npy = "\x93NUMPY\x01";
  npy.push_back('\0');
  npy.push_back(static_cast<char>(header.size()));
  npy.push_back('\0');
  npy += header;
  npy.append(raw.data.begin(), raw.data.end());
  const std::string path = Temp("u8.npy");
  Put(path, npy);
  auto d = Dataset::Open(path, kMnist, kNorm);
  ASSERT_TRUE(d.ok()) << d.status();
  int64_t count = 0;
  auto expected = ReadImagesFor(kImages, 4, kMnist, kNorm, &count);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(All(**d), *expected);
}

// Folder-per-class: class "a" gets images 0 and 2, class "b" image 1.
std::string ClassFolder(const std::string& name, const RawImages& raw) {
  const std::string dir = Temp(name);
  std::filesystem::remove_all(dir);
  Put(dir + "/a/0.png", Png(Padded(&raw.data[0])));
  Put(dir + "/a/sub/2.png", Png(Padded(&raw.data[2 * 784])));
  Put(dir + "/b/1.png", Png(Padded(&raw.data[784])));
  Put(dir + "/b/README", "not an image");
  std::filesystem::create_directories(dir + "/c");  // An empty class.
  return dir;
}

TEST(DatasetTest, FolderPerClassGivesLabelsAndDecodesToTheIdxPixels) {
  const RawImages raw = FirstImages(3);
  const std::string dir = ClassFolder("classes", raw);
  auto d = Dataset::Open(dir, kMnist, kNorm);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->format(), Dataset::Format::kImageFolder);
  ASSERT_EQ((*d)->count(), 3);
  ASSERT_TRUE((*d)->has_labels());
  EXPECT_THAT((*d)->classes(), ElementsAre("a", "b", "c"));
  EXPECT_THAT((*d)->labels(), ElementsAre(0, 0, 1));
  auto idx = Dataset::Open(kImages, kMnist, kNorm, Limit(3));
  ASSERT_TRUE(idx.ok());
  auto expected = (*idx)->Images(std::vector<int64_t>{0, 2, 1});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(All(**d), *expected);
}

TEST(DatasetTest, TarsReadLikeTheirFolder) {
  const RawImages raw = FirstImages(3);
  const std::string dir = ClassFolder("tarred", raw);
  auto folder = Dataset::Open(dir, kMnist, kNorm);
  ASSERT_TRUE(folder.ok()) << folder.status();

  const std::string ours = Temp("ours.tar");
  ASSERT_TRUE(WriteImageTar(dir, Env::Default(), ours).ok());
  // `tar cf x.tar folder`: everything under one top folder.
  const std::string gnu = Temp("gnu.tar");
  const std::string command = absl::StrCat("tar -C '", ::testing::TempDir(),
                                           "' -cf '", gnu, "' dataset_tarred");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  for (const std::string& tar : {ours, gnu}) {
    auto d = Dataset::Open(tar, kMnist, kNorm);
    ASSERT_TRUE(d.ok()) << tar << ": " << d.status();
    EXPECT_EQ((*d)->format(), Dataset::Format::kImageTar);
    EXPECT_EQ((*d)->classes(), (*folder)->classes()) << tar;
    EXPECT_EQ((*d)->labels(), (*folder)->labels()) << tar;
    EXPECT_EQ(All(**d), All(**folder)) << tar;
  }
}

TEST(DatasetTest, FlatFoldersTakeALabelsFile) {
  const RawImages raw = FirstImages(2);
  const std::string dir = Temp("flat");
  std::filesystem::remove_all(dir);
  Put(dir + "/x1.png", Png(Padded(&raw.data[0])));
  auto jpeg = EncodeJpeg(Padded(&raw.data[784]), 95);
  ASSERT_TRUE(jpeg.ok());
  Put(dir + "/x2.jpg", *jpeg);
  auto plain = Dataset::Open(dir, kMnist, kNorm);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)->count(), 2);
  EXPECT_FALSE((*plain)->has_labels());

  const std::string labels = Temp("flat_labels.txt");
  Put(labels, "7\n3\n");
  auto d = Dataset::Open(dir, kMnist, kNorm, WithLabels(labels));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT((*d)->labels(), ElementsAre(7, 3));
  EXPECT_EQ(All(**d).size(), 2u * 784);

  Put(labels, "7\n");
  auto short_labels = Dataset::Open(dir, kMnist, kNorm, WithLabels(labels));
  EXPECT_EQ(short_labels.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(short_labels.status().message()),
              HasSubstr("flat_labels.txt: holds 1 labels for 2 images"));
}

TEST(DatasetTest, BadInputsAreNamed) {
  auto missing = Dataset::Open("/nonexistent/set", kMnist, kNorm);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("/nonexistent/set"));

  const std::string text = Temp("notes.csv");
  Put(text, "a,b,c\n1,2,3\n");
  auto unknown = Dataset::Open(text, kMnist, kNorm);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.status().message()),
              HasSubstr("notes.csv: not a data set"));

  const std::string mixed = Temp("mixed");
  std::filesystem::remove_all(mixed);
  const RawImages raw = FirstImages(1);
  Put(mixed + "/top.png", Png(Padded(raw.data.data())));
  Put(mixed + "/cls/in.png", Png(Padded(raw.data.data())));
  auto m = Dataset::Open(mixed, kMnist, kNorm);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("both at its top"));

  const std::string empty = Temp("empty");
  std::filesystem::remove_all(empty);
  Put(empty + "/readme.txt", "no images");
  auto e = Dataset::Open(empty, kMnist, kNorm);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("holds no PNG"));

  const std::string broken = Temp("broken");
  std::filesystem::remove_all(broken);
  Put(broken + "/ok.png", Png(Padded(raw.data.data())));
  Put(broken + "/bad.png", "\x89PNG\r\n\x1a\n truncated");
  auto b = Dataset::Open(broken, kMnist, kNorm);
  ASSERT_TRUE(b.ok()) << b.status();  // Images decode when asked for.
  auto decoded = (*b)->ImageRange(0, 2);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(decoded.status().message()),
              HasSubstr(broken + "/bad.png: the image does not decode"));
  EXPECT_TRUE((*b)->Images(std::vector<int64_t>{1}).ok());  // ok.png.

  // A colour input takes grey images (repeated), but not 2 channels.
  EXPECT_TRUE(Dataset::Open(mixed + "/cls", {"rgb", 3, 28, 28}, {})
                  .value()
                  ->ImageRange(0, 1)
                  .ok());
  auto two = Dataset::Open(mixed + "/cls", {"two", 2, 28, 28}, {});
  ASSERT_TRUE(two.ok());
  EXPECT_THAT(std::string((*two)->ImageRange(0, 1).status().message()),
              HasSubstr("takes 2 channels"));
}

TEST(DatasetTest, BudgetsAreResourceExhausted) {
  const RawImages raw = FirstImages(3);
  const std::string dir = ClassFolder("budget", raw);
  DatasetOptions tight;
  tight.max_bytes = 100;
  auto folder = Dataset::Open(dir, kMnist, kNorm, tight);
  EXPECT_EQ(folder.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(folder.status().message()),
              HasSubstr("more than the budget of 100"));
  auto idx = Dataset::Open(kImages, kMnist, kNorm, tight);
  EXPECT_EQ(idx.status().code(), absl::StatusCode::kResourceExhausted);
  const std::string tar = Temp("budget.tar");
  ASSERT_TRUE(WriteImageTar(dir, Env::Default(), tar).ok());
  EXPECT_EQ(Dataset::Open(tar, kMnist, kNorm, tight).status().code(),
            absl::StatusCode::kResourceExhausted);
  const std::string npy = Temp("budget.npy");
  Put(npy, SerializeNpy(std::vector<float>(784),
                        std::vector<int64_t>{1, 1, 28, 28}));
  EXPECT_EQ(Dataset::Open(npy, kMnist, kNorm, tight).status().code(),
            absl::StatusCode::kResourceExhausted);

  DatasetOptions few_pixels;
  few_pixels.max_image_pixels = 32 * 32 - 1;
  auto d = Dataset::Open(dir, kMnist, kNorm, few_pixels);
  ASSERT_TRUE(d.ok());
  auto images = (*d)->ImageRange(0, 1);
  EXPECT_EQ(images.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(images.status().message()), HasSubstr("0.png"));
}

// Data sets kept in an in-memory file system, and read through one that
// fails on purpose.
class DatasetEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mem_->CreateDirs("/sets").ok()); }
  void PutMem(const std::string& path, const std::string& bytes) {
    ASSERT_TRUE(mem_->CreateDirs(DirName(path)).ok());
    ASSERT_TRUE(WriteFileAtomically(mem_.get(), path, bytes).ok());
  }
  DatasetOptions In(Env* env) {
    DatasetOptions options;
    options.env = env;
    return options;
  }
  std::unique_ptr<Env> mem_ = NewMemEnv();
  FaultInjectionEnv faults_{mem_.get()};
};

TEST_F(DatasetEnvTest, IdxAndNpyReadFromMemory) {
  auto gz = ReadFileToString(Env::Default(), kImages);
  ASSERT_TRUE(gz.ok()) << gz.status();
  PutMem("/sets/images.gz", *gz);
  DatasetOptions options = In(mem_.get());
  options.limit = 5;
  auto idx = Dataset::Open("/sets/images.gz", kMnist, kNorm, options);
  ASSERT_TRUE(idx.ok()) << idx.status();
  EXPECT_EQ((*idx)->format(), Dataset::Format::kIdx);
  auto disk = Dataset::Open(kImages, kMnist, kNorm, Limit(5));
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(All(**idx), All(**disk));

  std::vector<float> values(2 * 784);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * i;
  PutMem("/sets/x.npy",
         SerializeNpy(values, std::vector<int64_t>{2, 1, 28, 28}));
  PutMem("/sets/labels.txt", "4\n2\n");
  options = In(mem_.get());
  options.labels_path = "/sets/labels.txt";
  auto npy = Dataset::Open("/sets/x.npy", kMnist, kNorm, options);
  ASSERT_TRUE(npy.ok()) << npy.status();
  EXPECT_EQ((*npy)->format(), Dataset::Format::kNpy);
  EXPECT_EQ(All(**npy), values);
  EXPECT_THAT((*npy)->labels(), ElementsAre(4, 2));
  EXPECT_EQ(*Dataset::Detect("/sets/x.npy", mem_.get()), Dataset::Format::kNpy);

  // Nothing of it is on disk, and a missing path is named.
  EXPECT_EQ(Dataset::Open("/sets/x.npy", kMnist, kNorm).status().code(),
            absl::StatusCode::kNotFound);
  auto missing = Dataset::Open("/sets/none", kMnist, kNorm, In(mem_.get()));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("/sets/none: no such file or folder"));
}

TEST_F(DatasetEnvTest, FoldersAndTarsReadFromMemory) {
  const RawImages raw = FirstImages(3);
  // Class "a" gets images 0 and 2, class "b" image 1; "c" is empty.
  PutMem("/sets/f/a/0.png", Png(Padded(&raw.data[0])));
  PutMem("/sets/f/a/sub/2.png", Png(Padded(&raw.data[2 * 784])));
  PutMem("/sets/f/b/1.png", Png(Padded(&raw.data[784])));
  PutMem("/sets/f/b/README", "not an image");
  PutMem("/sets/f/.hidden/9.png", "skipped");
  ASSERT_TRUE(mem_->CreateDirs("/sets/f/c").ok());
  auto folder = Dataset::Open("/sets/f", kMnist, kNorm, In(mem_.get()));
  ASSERT_TRUE(folder.ok()) << folder.status();
  EXPECT_EQ((*folder)->format(), Dataset::Format::kImageFolder);
  EXPECT_THAT((*folder)->classes(), ElementsAre("a", "b", "c"));
  EXPECT_THAT((*folder)->labels(), ElementsAre(0, 0, 1));
  auto idx = Dataset::Open(kImages, kMnist, kNorm, Limit(3));
  ASSERT_TRUE(idx.ok());
  auto expected = (*idx)->Images(std::vector<int64_t>{0, 2, 1});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(All(**folder), *expected);

  ASSERT_TRUE(WriteImageTar("/sets/f", mem_.get(), "/sets/f.tar").ok());
  auto tar = Dataset::Open("/sets/f.tar", kMnist, kNorm, In(mem_.get()));
  ASSERT_TRUE(tar.ok()) << tar.status();
  EXPECT_EQ((*tar)->format(), Dataset::Format::kImageTar);
  EXPECT_EQ((*tar)->labels(), (*folder)->labels());
  EXPECT_EQ(All(**tar), *expected);
}

TEST_F(DatasetEnvTest, FailedAndCutReadsAreErrorsNamingTheFile) {
  std::vector<float> values(3 * 784, 1.5f);
  PutMem("/sets/x.npy",
         SerializeNpy(values, std::vector<int64_t>{3, 1, 28, 28}));
  auto npy = Dataset::Open("/sets/x.npy", kMnist, kNorm, In(&faults_));
  ASSERT_TRUE(npy.ok()) << npy.status();
  // Rows are read when asked for: the faults hit Images.
  faults_.SetFailReads(true);
  auto failed = (*npy)->ImageRange(0, 3);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("/sets/x.npy: read failed"));
  faults_.SetFailReads(false);
  faults_.SetFilesEndAt(4000);  // Inside the second row.
  EXPECT_TRUE((*npy)->Images(std::vector<int64_t>{0}).ok());
  auto cut = (*npy)->Images(std::vector<int64_t>{1});
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(cut.status().message()),
              HasSubstr("/sets/x.npy: ends at byte 4000"));

  // An IDX set is read whole when opened.
  auto gz = ReadFileToString(Env::Default(), kImages);
  ASSERT_TRUE(gz.ok()) << gz.status();
  PutMem("/sets/images.gz", *gz);
  auto idx = Dataset::Open("/sets/images.gz", kMnist, kNorm, In(&faults_));
  EXPECT_EQ(idx.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(idx.status().message()),
              HasSubstr("/sets/images.gz: ends at byte 4000"));
  faults_.SetFilesEndAt(-1);
  faults_.SetFailReads(true);
  idx = Dataset::Open("/sets/images.gz", kMnist, kNorm, In(&faults_));
  EXPECT_EQ(idx.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(idx.status().message()),
              HasSubstr("/sets/images.gz: read failed"));
}

}  // namespace
}  // namespace esb::data
