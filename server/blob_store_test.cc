#include "server/blob_store.h"

#include <string>

#include "core/env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::server {
namespace {

using ::testing::HasSubstr;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = NewMemEnv();
    auto store = BlobStore::Open(env_.get(), "/data", 1 << 20);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  std::unique_ptr<Env> env_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, StreamedUploadIsStoredByDigest) {
  std::string bytes;
  for (int i = 0; i < 300000; ++i) bytes.push_back(static_cast<char>(i % 251));
  const std::string sha = Sha256Hex(bytes);
  auto upload = store_->Start(sha, static_cast<int64_t>(bytes.size()));
  ASSERT_TRUE(upload.ok()) << upload.status();
  for (size_t at = 0; at < bytes.size(); at += 70000) {
    ASSERT_TRUE((*upload)->Append(bytes.substr(at, 70000)).ok());
  }
  // Not visible until committed.
  EXPECT_TRUE(absl::IsNotFound(store_->Size(sha).status()));
  ASSERT_TRUE((*upload)->Commit().ok());
  EXPECT_EQ(*store_->Size(sha), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(*store_->ReadAll(sha, 1 << 20), bytes);
  auto listed = store_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].sha256, sha);
  EXPECT_TRUE(env_->GetChildren("/data/tmp")->empty());
}

TEST_F(BlobStoreTest, WrongDigestTruncationAndOversizeAreRefused) {
  const std::string bytes = "the model";
  const std::string wrong = Sha256Hex("another model");
  auto upload = store_->Start(wrong, 9);
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Append(bytes).ok());
  absl::Status s = (*upload)->Commit();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("not the declared " + wrong));
  EXPECT_TRUE(absl::IsNotFound(store_->Size(wrong).status()));

  const std::string sha = Sha256Hex(bytes);
  auto short_upload = store_->Start(sha, 9);
  ASSERT_TRUE((*short_upload)->Append("the").ok());
  s = (*short_upload)->Commit();
  EXPECT_THAT(s.message(), HasSubstr("ended after 3 of 9 bytes"));
  auto long_upload = store_->Start(sha, 2);
  EXPECT_TRUE(absl::IsInvalidArgument((*long_upload)->Append(bytes)));

  auto big = store_->Start(sha, (1 << 20) + 1);
  EXPECT_TRUE(absl::IsResourceExhausted(big.status()));
  EXPECT_THAT(big.status().message(), HasSubstr("--max-upload-bytes"));
  EXPECT_TRUE(
      absl::IsInvalidArgument(store_->Start("../etc/passwd", 1).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(store_->Read(std::string(64, 'G')).status()));
  // Abandoned uploads leave no temporary file behind.
  upload->reset();
  short_upload->reset();
  long_upload->reset();
  EXPECT_TRUE(env_->GetChildren("/data/tmp")->empty());
}

TEST_F(BlobStoreTest, OpenRemovesTemporaryFilesAndDeleteWorks) {
  std::string sha;
  ASSERT_TRUE(store_->Put("kept", &sha).ok());
  ASSERT_TRUE(WriteFileAtomically(env_.get(), "/data/tmp/left.1.2", "x").ok());
  auto reopened = BlobStore::Open(env_.get(), "/data", 1 << 20);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE(env_->GetChildren("/data/tmp")->empty());
  EXPECT_EQ(*(*reopened)->ReadAll(sha, 100), "kept");
  ASSERT_TRUE((*reopened)->Delete(sha).ok());
  EXPECT_TRUE(absl::IsNotFound((*reopened)->Size(sha).status()));
}

}  // namespace
}  // namespace esb::server
