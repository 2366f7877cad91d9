#include "worker/blob_cache.h"

#include <filesystem>
#include <string>

#include "core/env/digest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::worker {
namespace {

using ::testing::HasSubstr;

// A source serving `bytes` in pieces of 3, counting the fetches.
struct CountingSource {
  std::string bytes;
  int fetches = 0;

  BlobSource Source() {
    return [this](const std::string&,
                  const std::function<absl::Status(absl::string_view)>& sink) {
      ++fetches;
      for (size_t i = 0; i < bytes.size(); i += 3) {
        if (absl::Status s = sink(absl::string_view(bytes).substr(i, 3));
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    };
  }
};

std::string Dir(const std::string& name) {
  return std::string(::testing::TempDir()) + "/blob_cache_" + name;
}

// Dir(name), emptied of what an earlier run left.
std::string Fresh(const std::string& name) {
  std::filesystem::remove_all(Dir(name));
  return Dir(name);
}

TEST(BlobCacheTest, FetchesOnceThenServesFromTheCache) {
  BlobCache cache(Fresh("once"), Env::Default());
  CountingSource source{"the bytes of a model, streamed"};
  const std::string sha = Sha256Hex(source.bytes);
  auto path = cache.Get(sha, static_cast<int64_t>(source.bytes.size()),
                        source.Source());
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, Dir("once") + "/" + sha);
  EXPECT_EQ(*ReadFileToString(Env::Default(), *path), source.bytes);
  auto again = cache.Get(sha, -1, source.Source());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *path);
  EXPECT_EQ(source.fetches, 1);
  // Nothing but the blob is left in the folder.
  auto children = Env::Default()->GetChildren(Dir("once"));
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(*children, std::vector<std::string>{sha});
}

TEST(BlobCacheTest, RefusesBytesThatDoNotMatchTheName) {
  BlobCache cache(Fresh("wrong"), Env::Default());
  CountingSource source{"what the server sent"};
  const std::string sha = Sha256Hex("what the blob is");
  auto path = cache.Get(sha, -1, source.Source());
  EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(path.status().message()),
              HasSubstr(Sha256Hex(source.bytes)));
  EXPECT_FALSE(Env::Default()->FileExists(cache.PathOf(sha)));
  auto children = Env::Default()->GetChildren(Dir("wrong"));
  ASSERT_TRUE(children.ok());
  EXPECT_TRUE(children->empty()) << "temporary file left behind";
  // A second try fetches again (nothing bad was cached).
  EXPECT_FALSE(cache.Get(sha, -1, source.Source()).ok());
  EXPECT_EQ(source.fetches, 2);
}

TEST(BlobCacheTest, RefusesAWrongSizeAndABadName) {
  BlobCache cache(Fresh("size"), Env::Default());
  CountingSource source{"twelve bytes"};
  const std::string sha = Sha256Hex(source.bytes);
  auto short_size = cache.Get(sha, 5, source.Source());
  EXPECT_EQ(short_size.status().code(), absl::StatusCode::kDataLoss);
  auto long_size = cache.Get(sha, 50, source.Source());
  EXPECT_EQ(long_size.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(long_size.status().message()),
              HasSubstr("50 expected"));
  EXPECT_FALSE(Env::Default()->FileExists(cache.PathOf(sha)));
  auto bad = cache.Get("../../etc/passwd", -1, source.Source());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(source.fetches, 2);
}

TEST(BlobCacheTest, ASourceErrorKeepsNothing) {
  BlobCache cache(Fresh("error"), Env::Default());
  const std::string sha = Sha256Hex("x");
  auto path =
      cache.Get(sha, -1,
                [](const std::string&,
                   const std::function<absl::Status(absl::string_view)>& sink) {
                  sink("x").IgnoreError();
                  return absl::UnavailableError("connection reset");
                });
  EXPECT_EQ(path.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(Env::Default()->FileExists(cache.PathOf(sha)));
}

}  // namespace
}  // namespace esb::worker
