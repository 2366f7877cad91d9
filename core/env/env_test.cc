#include "core/env/env.h"

#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/env/digest.h"
#include "core/env/fault_env.h"
#include "core/env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The same contract on the POSIX and the in-memory Env.
class EnvContractTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      mem_ = NewMemEnv();
      env_ = mem_.get();
      root_ = "/t";
    } else {
      env_ = Env::Default();
      root_ = absl::StrCat(::testing::TempDir(), "/env_test_", ::getpid());
      std::filesystem::remove_all(root_);
    }
    ASSERT_TRUE(env_->CreateDirs(root_ + "/sub/deeper").ok());
  }
  void TearDown() override {
    if (!GetParam()) std::filesystem::remove_all(root_);
  }
  std::unique_ptr<Env> mem_;
  Env* env_ = nullptr;
  std::string root_;
};

TEST_P(EnvContractTest, WritesReadsAndLists) {
  const std::string path = root_ + "/sub/a.bin";
  ASSERT_TRUE(WriteFileAtomically(env_, path, "hello").ok());
  absl::StatusOr<std::string> read = ReadFileToString(env_, path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "hello");
  EXPECT_EQ(*env_->GetFileSize(path), 5u);
  EXPECT_TRUE(env_->FileExists(path));
  // The temporary file is gone: only the artifact and the folder remain.
  EXPECT_THAT(*env_->GetChildren(root_ + "/sub"),
              ElementsAre("a.bin", "deeper"));
  // Replaced whole.
  ASSERT_TRUE(WriteFileAtomically(env_, path, "bye").ok());
  EXPECT_EQ(*ReadFileToString(env_, path), "bye");
}

TEST_P(EnvContractTest, ErrorsNameThePathAndTheKind) {
  absl::StatusOr<std::string> missing = ReadFileToString(env_, root_ + "/nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(root_ + "/nope"));
  absl::Status no_dir = WriteFileAtomically(env_, root_ + "/none/x", "1");
  EXPECT_EQ(no_dir.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(env_->DeleteFile(root_ + "/nope").code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteFileAtomically(env_, root_ + "/big", "0123456789").ok());
  absl::StatusOr<std::string> big = ReadFileToString(env_, root_ + "/big", 4);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(big.status().message(), HasSubstr("limit of 4 bytes"));
}

TEST_P(EnvContractTest, ConcurrentWritersOfOnePathNeverCollide) {
  // With a fixed temporary name two writers would interleave their bytes;
  // each writer's name is its own, so the file is always one whole write.
  const std::string path = root_ + "/shared";
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string bytes(100000, static_cast<char>('a' + t));
      for (int i = 0; i < 5 && results[t].ok(); ++i) {
        results[t] = WriteFileAtomically(env_, path, bytes);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  const std::string final_bytes = *ReadFileToString(env_, path);
  ASSERT_EQ(final_bytes.size(), 100000u);
  EXPECT_EQ(final_bytes, std::string(100000, final_bytes[0]));
  EXPECT_THAT(*env_->GetChildren(root_), ElementsAre("shared", "sub"));
}

TEST_P(EnvContractTest, RandomAccessFilesReadExactRanges) {
  const std::string path = root_ + "/sub/r.bin";
  ASSERT_TRUE(WriteFileAtomically(env_, path, "0123456789").ok());
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> file =
      env_->NewRandomAccessFile(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ((*file)->size(), 10u);
  std::string out = "stale";
  ASSERT_TRUE((*file)->ReadAt(3, 4, &out).ok());
  EXPECT_EQ(out, "3456");
  ASSERT_TRUE((*file)->ReadAt(10, 0, &out).ok());
  EXPECT_EQ(out, "");
  ASSERT_TRUE((*file)->ReadAt(0, 10, &out).ok());
  EXPECT_EQ(out, "0123456789");

  absl::Status past = (*file)->ReadAt(8, 3, &out);
  EXPECT_EQ(past.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(past.message(),
              HasSubstr(path + ": needs bytes 8..11 but the file holds 10"));
  // An offset and count whose sum wraps around is past the end too.
  EXPECT_EQ((*file)->ReadAt(5, UINT64_MAX - 2, &out).code(),
            absl::StatusCode::kInvalidArgument);

  absl::StatusOr<std::unique_ptr<RandomAccessFile>> missing =
      env_->NewRandomAccessFile(root_ + "/nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(root_ + "/nope"));
  EXPECT_FALSE(env_->NewRandomAccessFile(root_ + "/sub").ok());
}

TEST_P(EnvContractTest, FileTypes) {
  ASSERT_TRUE(WriteFileAtomically(env_, root_ + "/f", "x").ok());
  EXPECT_EQ(*env_->GetFileType(root_ + "/f"), FileType::kRegular);
  EXPECT_EQ(*env_->GetFileType(root_ + "/sub"), FileType::kDirectory);
  EXPECT_EQ(*env_->GetFileType(root_ + "/sub/"), FileType::kDirectory);
  absl::StatusOr<FileType> missing = env_->GetFileType(root_ + "/nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(root_ + "/nope"));
}

TEST(PosixEnvTest, AFileThatShrinksAfterOpenIsDataLoss) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/env_test_shrink_", ::getpid());
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, "0123456789").ok());
  auto file = Env::Default()->NewRandomAccessFile(path);
  ASSERT_TRUE(file.ok()) << file.status();
  std::filesystem::resize_file(path, 4);
  std::string out;
  absl::Status s = (*file)->ReadAt(2, 6, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(),
              HasSubstr(path + ": ends at byte 4 while reading 8 (it shrank)"));
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(PosixAndMemory, EnvContractTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Memory" : "Posix";
                         });

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(base_->CreateDirs("/out").ok());
    ASSERT_TRUE(WriteFileAtomically(base_.get(), "/out/model", "old").ok());
  }
  // The folder holds the old artifact and nothing else.
  void ExpectUntouched() {
    EXPECT_EQ(*ReadFileToString(base_.get(), "/out/model"), "old");
    EXPECT_THAT(*base_->GetChildren("/out"), ElementsAre("model"));
  }
  std::unique_ptr<Env> base_ = NewMemEnv();
  FaultInjectionEnv env_{base_.get()};
};

TEST_F(FaultTest, FullDiskLeavesNoPartialFile) {
  env_.SetDiskSpace(10);
  absl::Status s =
      WriteFileAtomically(&env_, "/out/model", std::string(64, 'x'));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("No space left on device"));
  EXPECT_THAT(s.message(), HasSubstr("/out/model.tmp."));
  ExpectUntouched();
}

TEST_F(FaultTest, FailedWriteSyncOrRenameReportsTheStep) {
  env_.SetFailWrites(true);
  absl::Status s = WriteFileAtomically(&env_, "/out/model", "new");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("write failed"));
  ExpectUntouched();
  env_.SetFailWrites(false);
  env_.SetFailSync(true);
  s = WriteFileAtomically(&env_, "/out/model", "new");
  EXPECT_THAT(s.message(), HasSubstr("fsync failed"));
  ExpectUntouched();
  env_.SetFailSync(false);
  env_.SetFailRename(true);
  s = WriteFileAtomically(&env_, "/out/model", "new");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("rename to /out/model failed"));
  ExpectUntouched();
}

TEST_F(FaultTest, CrashBetweenWriteAndRenameKeepsTheOldArtifact) {
  env_.SetCrashAtRename(true);
  absl::Status s = WriteFileAtomically(&env_, "/out/model", "new");
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(env_.crashed());
  // What a restarted process finds: the old artifact whole, and the new
  // bytes only under a temporary name, fully written and synced.
  EXPECT_EQ(*ReadFileToString(base_.get(), "/out/model"), "old");
  std::vector<std::string> names = *base_->GetChildren("/out");
  ASSERT_EQ(names.size(), 2u);
  EXPECT_THAT(names[1], HasSubstr("model.tmp."));
  EXPECT_EQ(*ReadFileToString(base_.get(), "/out/" + names[1]), "new");
  EXPECT_EQ(env_.syncs(), 1);
}

TEST_F(FaultTest, SyncsTheFileThenTheDirectoryAfterTheRename) {
  ASSERT_TRUE(WriteFileAtomically(&env_, "/out/model", "new").ok());
  EXPECT_EQ(env_.syncs(), 1);
  EXPECT_EQ(env_.renames(), 1);
  EXPECT_EQ(env_.dir_syncs(), 1);
  EXPECT_EQ(*ReadFileToString(&env_, "/out/model"), "new");
}

TEST_F(FaultTest, ShortReadsStillReadTheWholeFile) {
  const std::string bytes(5000, 'q');
  ASSERT_TRUE(WriteFileAtomically(base_.get(), "/out/b", bytes).ok());
  env_.SetMaxReadBytes(7);
  EXPECT_EQ(*ReadFileToString(&env_, "/out/b"), bytes);
}

TEST_F(FaultTest, ShortRandomReadsStillReadTheWholeRange) {
  std::string bytes;
  for (int i = 0; i < 5000; ++i) bytes.push_back(static_cast<char>(i * 13));
  ASSERT_TRUE(WriteFileAtomically(base_.get(), "/out/b", bytes).ok());
  env_.SetMaxReadBytes(7);
  auto file = env_.NewRandomAccessFile("/out/b");
  ASSERT_TRUE(file.ok()) << file.status();
  std::string out;
  ASSERT_TRUE((*file)->ReadAt(100, 4000, &out).ok());
  EXPECT_EQ(out, bytes.substr(100, 4000));
  EXPECT_EQ(env_.bytes_read(), 4000);
}

TEST_F(FaultTest, FailedReadsAreDataLossNamingTheFile) {
  ASSERT_TRUE(WriteFileAtomically(base_.get(), "/out/b", "abcdef").ok());
  auto file = env_.NewRandomAccessFile("/out/b");
  ASSERT_TRUE(file.ok()) << file.status();
  env_.SetFailReads(true);
  std::string out;
  absl::Status s = (*file)->ReadAt(0, 3, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("/out/b: read failed"));
  absl::StatusOr<std::string> whole = ReadFileToString(&env_, "/out/b");
  EXPECT_EQ(whole.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(whole.status().message(), HasSubstr("/out/b: read failed"));
  env_.SetFailReads(false);
  ASSERT_TRUE((*file)->ReadAt(0, 3, &out).ok());
  EXPECT_EQ(out, "abc");
}

TEST_F(FaultTest, FilesCutWhileReadEndEarly) {
  ASSERT_TRUE(WriteFileAtomically(base_.get(), "/out/b", "abcdefghij").ok());
  auto file = env_.NewRandomAccessFile("/out/b");
  ASSERT_TRUE(file.ok()) << file.status();
  env_.SetFilesEndAt(4);
  EXPECT_EQ((*file)->size(), 10u);  // As opened.
  std::string out;
  ASSERT_TRUE((*file)->ReadAt(1, 3, &out).ok());
  EXPECT_EQ(out, "bcd");
  absl::Status s = (*file)->ReadAt(2, 5, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(),
              HasSubstr("/out/b: ends at byte 4 while reading 7 (it shrank)"));
  // A sequential reader sees the file end at the cut.
  EXPECT_EQ(*ReadFileToString(&env_, "/out/b"), "abcd");
}

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, StreamedEqualsWhole) {
  std::string bytes;
  for (int i = 0; i < 100000; ++i) bytes.push_back(static_cast<char>(i * 7));
  Sha256Stream stream;
  for (size_t at = 0; at < bytes.size(); at += 4099) {
    stream.Update(absl::string_view(bytes).substr(at, 4099));
  }
  const std::string hex = stream.HexDigest();
  EXPECT_EQ(hex, Sha256Hex(bytes));
  EXPECT_TRUE(IsSha256Hex(hex));
  EXPECT_FALSE(IsSha256Hex(hex.substr(1)));
  EXPECT_FALSE(IsSha256Hex("../" + hex.substr(3)));
  std::string upper = hex;
  upper[0] = 'A';
  EXPECT_FALSE(IsSha256Hex(upper));
}

TEST(DirNameTest, Cases) {
  EXPECT_EQ(DirName("a"), ".");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("x/y/z"), "x/y");
}

}  // namespace
}  // namespace esb
