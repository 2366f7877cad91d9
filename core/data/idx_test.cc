#include "core/data/idx.h"

#include <zlib.h>

#include <array>
#include <fstream>
#include <numeric>
#include <string>

#include "core/env/fault_env.h"
#include "core/env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::HasSubstr;

constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist/";

// An IDX header for unsigned bytes of `shape`.
std::string Header(const std::vector<uint32_t>& shape, char type = 0x08) {
  std::string out = {0, 0, type, static_cast<char>(shape.size())};
  for (uint32_t d : shape) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((d >> shift) & 0xff));
    }
  }
  return out;
}

std::string Bytes(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(i * 7 % 256);
  return out;
}

std::string Path(absl::string_view name) {
  return testing::TempDir() + "idx_test_" + std::string(name);
}

std::string WriteRaw(absl::string_view name, const std::string& bytes) {
  const std::string path = Path(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string WriteGzip(absl::string_view name, const std::string& bytes) {
  const std::string path = Path(name);
  gzFile file = gzopen(path.c_str(), "wb");
  EXPECT_NE(file, nullptr);
  EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  EXPECT_EQ(gzclose(file), Z_OK);
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<uint8_t> AsVector(const std::string& bytes) {
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

TEST(IdxTest, RoundTripsRawAndGzip) {
  const std::string data = Bytes(2 * 3 * 4);
  const std::string file = Header({2, 3, 4}) + data;
  for (const std::string& path :
       {WriteRaw("rt.idx", file), WriteGzip("rt.idx.gz", file)}) {
    auto array = ReadIdx(path);
    ASSERT_TRUE(array.ok()) << array.status();
    EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 3, 4})) << path;
    EXPECT_EQ(array->data, AsVector(data)) << path;
  }
  // The gzip file really is compressed: it starts with the gzip magic.
  EXPECT_EQ(ReadFile(Path("rt.idx.gz")).substr(0, 2), "\x1f\x8b");
}

TEST(IdxTest, ReadsRankOneAndEmptyArrays) {
  auto labels = ReadIdx(WriteGzip("labels.gz", Header({5}) + "\x01\x02\x03"
                                                             "\x04\x09"));
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(labels->shape, std::vector<int64_t>{5});
  EXPECT_EQ(labels->data, (std::vector<uint8_t>{1, 2, 3, 4, 9}));

  auto empty = ReadIdx(WriteRaw("empty.idx", Header({0, 28, 28})));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->shape, (std::vector<int64_t>{0, 28, 28}));
  EXPECT_TRUE(empty->data.empty());
}

TEST(IdxTest, LimitCapsTheFirstDimension) {
  const std::string data = Bytes(5 * 2 * 2);
  const std::string file = Header({5, 2, 2}) + data;
  for (const std::string& path :
       {WriteRaw("limit.idx", file), WriteGzip("limit.idx.gz", file)}) {
    auto two = ReadIdx(path, 2);
    ASSERT_TRUE(two.ok()) << two.status();
    EXPECT_EQ(two->shape, (std::vector<int64_t>{2, 2, 2}));
    EXPECT_EQ(two->data, AsVector(data.substr(0, 8)));

    auto none = ReadIdx(path, 0);
    ASSERT_TRUE(none.ok()) << none.status();
    EXPECT_EQ(none->shape, (std::vector<int64_t>{0, 2, 2}));
    EXPECT_TRUE(none->data.empty());

    auto all = ReadIdx(path, 100);
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_EQ(all->shape, (std::vector<int64_t>{5, 2, 2}));
    EXPECT_EQ(all->data, AsVector(data));
  }
}

TEST(IdxTest, TruncatedAndOverlongFilesSayHowMuchTheyHold) {
  const std::string short_file = Header({10, 2, 3}) + Bytes(50);
  for (const std::string& path : {WriteRaw("short.idx", short_file),
                                  WriteGzip("short.idx.gz", short_file)}) {
    auto r = ReadIdx(path);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(),
                HasSubstr(path + ": header says 10 x 2 x 3 = 60 bytes but the "
                                 "file holds 50"));
  }
  // A raw file's size is checked even when a limit leaves the damage unread.
  auto limited = ReadIdx(Path("short.idx"), 1);
  EXPECT_THAT(limited.status().message(), HasSubstr("the file holds 50"));

  const std::string long_file = Header({2, 2}) + Bytes(7);
  for (const std::string& path :
       {WriteRaw("long.idx", long_file), WriteGzip("long.idx.gz", long_file)}) {
    EXPECT_THAT(ReadIdx(path).status().message(),
                HasSubstr("header says 2 x 2 = 4 bytes but the file holds 7"));
  }
}

TEST(IdxTest, TruncatedGzipStreamIsAnError) {
  const std::string file = Header({100, 28, 28}) + Bytes(100 * 28 * 28);
  const std::string whole = ReadFile(WriteGzip("cut.idx.gz", file));
  // Cut inside the deflate data, and just before the 8-byte trailer.
  const std::string mid =
      WriteRaw("cut_mid.idx.gz", whole.substr(0, whole.size() / 2));
  auto r = ReadIdx(mid);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr(mid));
  EXPECT_THAT(r.status().message(), HasSubstr("gzip stream is truncated"));

  const std::string tail =
      WriteRaw("cut_tail.idx.gz", whole.substr(0, whole.size() - 8));
  r = ReadIdx(tail);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("gzip stream is truncated"));
}

TEST(IdxTest, CorruptGzipIsAnError) {
  const std::string file = Header({4, 4}) + Bytes(16);
  std::string gz = ReadFile(WriteGzip("crc.idx.gz", file));
  // Flip a bit of the CRC-32 in the trailer: the data inflates but fails the
  // check, which only a read to the end notices.
  gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 1);
  const std::string path = WriteRaw("crc.idx.gz", gz);
  auto r = ReadIdx(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr(path + ": corrupt gzip data"));

  // Garbage after the gzip magic.
  const std::string junk =
      WriteRaw("junk.idx.gz", std::string("\x1f\x8b\x08\x00", 4) + Bytes(40));
  r = ReadIdx(junk);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr(junk));
}

TEST(IdxTest, BadHeadersNameTheProblem) {
  auto magic = ReadIdx(WriteRaw("magic.idx", "PK\x03\x04 not an idx file"));
  EXPECT_EQ(magic.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(magic.status().message(),
              HasSubstr("magic.idx: bad magic 50 4b"));

  auto type = ReadIdx(WriteRaw("f32.idx", Header({1}, 0x0D) + Bytes(4)));
  EXPECT_THAT(type.status().message(),
              HasSubstr("data type 0x0d (float32) is not supported"));

  auto rank0 = ReadIdx(WriteRaw("rank0.idx", Header({})));
  EXPECT_THAT(rank0.status().message(), HasSubstr("rank is 0"));

  auto dims = ReadIdx(WriteRaw("dims.idx", Header({10, 28, 28}).substr(0, 10)));
  EXPECT_THAT(dims.status().message(),
              HasSubstr("header is truncated: rank 3 needs 16 header bytes "
                        "but the file holds 10"));

  auto tiny = ReadIdx(WriteRaw("tiny.idx", std::string("\0\0", 2)));
  EXPECT_THAT(tiny.status().message(), HasSubstr("holds 2 bytes"));

  auto empty = ReadIdx(WriteGzip("empty.idx.gz", ""));
  EXPECT_THAT(empty.status().message(), HasSubstr("holds 0 bytes"));

  // A header announcing far more than memory must fail without allocating.
  auto huge = ReadIdx(WriteRaw("huge.idx", Header({0xffffffff, 0xffffffff})));
  EXPECT_THAT(huge.status().message(), HasSubstr("more than 1 TiB"));
  auto wide = ReadIdx(WriteRaw("wide.idx", Header({2, 1u << 20, 1u << 21, 3})));
  EXPECT_THAT(wide.status().message(),
              HasSubstr("header dimensions 2 x 1048576 x 2097152 x ... "
                        "describe more than 1 TiB"));
  auto big = ReadIdx(WriteRaw("big.idx", Header({1u << 30, 256}) + Bytes(9)));
  EXPECT_THAT(big.status().message(),
              HasSubstr("= 274877906944 bytes but the file holds 9"));
}

TEST(IdxTest, MissingFileIsNotFound) {
  auto r = ReadIdx("/nonexistent/dir/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(),
              HasSubstr("/nonexistent/dir/t10k-labels-idx1-ubyte.gz"));
}

// `bytes` as one gzip member, compressed in memory.
std::string Gzip(const std::string& bytes) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&z, bytes.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Bytes that do not compress (a linear congruential sequence's high bits).
std::string Noise(size_t n) {
  std::string out(n, '\0');
  uint32_t x = 12345;
  for (char& c : out) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

// IDX files kept in an in-memory file system.
class IdxEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mem_->CreateDirs("/data").ok()); }
  std::string Put(const std::string& name, const std::string& bytes) {
    const std::string path = "/data/" + name;
    EXPECT_TRUE(WriteFileAtomically(mem_.get(), path, bytes).ok());
    return path;
  }
  std::unique_ptr<Env> mem_ = NewMemEnv();
  FaultInjectionEnv faults_{mem_.get()};
};

TEST_F(IdxEnvTest, ReadsRawAndGzipFromMemory) {
  const std::string data = Bytes(5 * 3 * 4);
  const std::string file = Header({5, 3, 4}) + data;
  for (const std::string& path :
       {Put("m.idx", file), Put("m.idx.gz", Gzip(file))}) {
    SCOPED_TRACE(path);
    auto array = ReadIdx(path, -1, mem_.get());
    ASSERT_TRUE(array.ok()) << array.status();
    EXPECT_EQ(array->shape, (std::vector<int64_t>{5, 3, 4}));
    EXPECT_EQ(array->data, AsVector(data));
    auto two = ReadIdx(path, 2, mem_.get());
    ASSERT_TRUE(two.ok()) << two.status();
    EXPECT_EQ(two->shape, (std::vector<int64_t>{2, 3, 4}));
    EXPECT_EQ(two->data, AsVector(data.substr(0, 24)));
    auto shape = ReadIdxShape(path, mem_.get());
    ASSERT_TRUE(shape.ok()) << shape.status();
    EXPECT_EQ(*shape, (std::vector<int64_t>{5, 3, 4}));
  }
  // Not on disk: the POSIX Env does not find it.
  EXPECT_EQ(ReadIdx("/data/m.idx").status().code(),
            absl::StatusCode::kNotFound);
  auto missing = ReadIdx("/data/none.idx", -1, mem_.get());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/data/none.idx"));
}

TEST_F(IdxEnvTest, GzipMembersReadAsOneStreamAndTrailingBytesAreIgnored) {
  // As gzip -d and zlib's gzread: `cat a.gz b.gz` holds a's bytes then b's,
  // and what follows the last member without the gzip magic is ignored.
  const std::string file = Header({4, 2}) + Bytes(8);
  const std::string two =
      Put("two.gz", Gzip(file.substr(0, 7)) + Gzip(file.substr(7)));
  auto joined = ReadIdx(two, -1, mem_.get());
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->data, AsVector(Bytes(8)));
  auto trailing =
      ReadIdx(Put("tail.gz", Gzip(file) + "trailing junk"), -1, mem_.get());
  ASSERT_TRUE(trailing.ok()) << trailing.status();
  EXPECT_EQ(trailing->data, AsVector(Bytes(8)));
  // The magic of a member that then breaks off is a truncated stream.
  auto cut = ReadIdx(Put("cut.gz", Gzip(file) + "\x1f\x8b"), -1, mem_.get());
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cut.status().message(), HasSubstr("gzip stream is truncated"));
}

TEST_F(IdxEnvTest, ALimitInflatesAndReadsOnlyTheItemsReturned) {
  const std::string file = Header({1000, 28, 28}) + Noise(1000 * 28 * 28);
  const std::string gz = Gzip(file);
  ASSERT_GT(gz.size(), 700000u);  // The noise does not compress.
  const std::string path = Put("big.idx.gz", gz);
  auto ten = ReadIdx(path, 10, &faults_);
  ASSERT_TRUE(ten.ok()) << ten.status();
  EXPECT_EQ(ten->shape, (std::vector<int64_t>{10, 28, 28}));
  EXPECT_EQ(ten->data, AsVector(file.substr(16, 10 * 784)));
  // 10 images are 7840 bytes; one 128 KiB input chunk covers them.
  EXPECT_LE(faults_.bytes_read(), 2 + (int64_t{1} << 17));
  // Damage after the items returned goes unnoticed with a limit, and is an
  // error without.
  std::string damaged = gz;
  damaged[gz.size() - 8] ^= 1;  // The CRC-32.
  const std::string bad = Put("bad.idx.gz", damaged);
  EXPECT_TRUE(ReadIdx(bad, 10, mem_.get()).ok());
  auto whole = ReadIdx(bad, -1, mem_.get());
  EXPECT_EQ(whole.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(whole.status().message(),
              HasSubstr(bad + ": corrupt gzip data: incorrect data check"));
}

TEST_F(IdxEnvTest, ShortReadsStillReadTheWholeFile) {
  // Larger than one 128 KiB piece.
  const std::string file = Header({300, 28, 28}) + Noise(300 * 28 * 28);
  faults_.SetMaxReadBytes(1000);
  for (const std::string& path :
       {Put("s.idx", file), Put("s.idx.gz", Gzip(file))}) {
    SCOPED_TRACE(path);
    auto array = ReadIdx(path, -1, &faults_);
    ASSERT_TRUE(array.ok()) << array.status();
    EXPECT_EQ(array->data, AsVector(file.substr(16)));
  }
}

TEST_F(IdxEnvTest, FailedAndCutReadsAreErrorsNamingTheFile) {
  const std::string file = Header({50, 28, 28}) + Noise(50 * 28 * 28);
  for (const std::string& path :
       {Put("f.idx", file), Put("f.idx.gz", Gzip(file))}) {
    SCOPED_TRACE(path);
    faults_.SetFailReads(true);
    auto failed = ReadIdx(path, -1, &faults_);
    EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(failed.status().message(), HasSubstr(path + ": read failed"));
    EXPECT_EQ(ReadIdxShape(path, &faults_).status().code(),
              absl::StatusCode::kDataLoss);
    faults_.SetFailReads(false);

    // The file is cut in its data after it was opened: never a short array.
    faults_.SetFilesEndAt(1000);
    auto cut = ReadIdx(path, -1, &faults_);
    EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(cut.status().message(), HasSubstr(path + ": ends at byte"));
    EXPECT_THAT(cut.status().message(), HasSubstr("(it shrank)"));
    // Cut in its header too.
    faults_.SetFilesEndAt(3);
    EXPECT_EQ(ReadIdx(path, -1, &faults_).status().code(),
              absl::StatusCode::kDataLoss);
    faults_.SetFilesEndAt(-1);
    EXPECT_TRUE(ReadIdx(path, -1, &faults_).ok());
  }
}

// The Debian package dataset-fashion-mnist (scripts/setup.sh installs it).
TEST(IdxTest, ReadsFashionMnistTestSet) {
  auto labels =
      ReadIdx(std::string(kFashionMnist) + "t10k-labels-idx1-ubyte.gz");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(labels->shape, std::vector<int64_t>{10000});
  ASSERT_EQ(labels->data.size(), 10000u);
  std::array<int, 10> per_class = {};
  for (uint8_t label : labels->data) {
    ASSERT_LT(label, 10);
    ++per_class[label];
  }
  // The test set is balanced: 1000 images of each of the 10 classes.
  for (int n : per_class) EXPECT_EQ(n, 1000);
  EXPECT_EQ(labels->data[0], 9);  // The first image is an ankle boot.

  const std::string images_path =
      std::string(kFashionMnist) + "t10k-images-idx3-ubyte.gz";
  auto images = ReadIdx(images_path);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ(images->shape, (std::vector<int64_t>{10000, 28, 28}));
  ASSERT_EQ(images->data.size(), 10000u * 28 * 28);
  // Real pictures: dark background, bright objects.
  const uint64_t sum =
      std::accumulate(images->data.begin(), images->data.end(), uint64_t{0});
  const double mean = static_cast<double>(sum) / images->data.size() / 255.0;
  EXPECT_NEAR(mean, 0.286, 0.01);

  auto first = ReadIdx(images_path, 100);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->shape, (std::vector<int64_t>{100, 28, 28}));
  EXPECT_TRUE(
      std::equal(first->data.begin(), first->data.end(), images->data.begin()));
}

}  // namespace
}  // namespace esb::data
