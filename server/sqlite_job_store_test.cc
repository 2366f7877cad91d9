#include "server/sqlite_job_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::server {
namespace {

using ::testing::HasSubstr;

class SqliteJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat(
               "store_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "jobs.db").string();
    auto store = SqliteJobStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  JobRecord Queued(const std::string& id, const std::string& key = "") {
    JobRecord r;
    r.job.set_id(id);
    r.job.set_state(esb::v1::JOB_STATE_QUEUED);
    r.job.set_idempotency_key(key);
    r.job.mutable_inputs()->mutable_model()->set_sha256(std::string(64, 'a'));
    return r;
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<SqliteJobStore> store_;
};

TEST_F(SqliteJobStoreTest, InsertGetAndIdempotencyKey) {
  bool existing = true;
  ASSERT_TRUE(store_->Insert(Queued("j1", "k"), &existing).ok());
  EXPECT_FALSE(existing);
  auto again = store_->Insert(Queued("j2", "k"), &existing);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(existing);
  EXPECT_EQ(again->id(), "j1");
  EXPECT_TRUE(absl::IsNotFound(store_->Get("j2").status()));
  // Jobs without a key never collide.
  ASSERT_TRUE(store_->Insert(Queued("j3"), &existing).ok());
  ASSERT_TRUE(store_->Insert(Queued("j4"), &existing).ok());
  EXPECT_FALSE(existing);
  auto got = store_->Get("j1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->job.idempotency_key(), "k");
  EXPECT_THAT(store_->Get("nope").status().message(), HasSubstr("nope"));
}

TEST_F(SqliteJobStoreTest, OldestQueuedFirstAndUpdatesPersist) {
  bool existing;
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(store_->Insert(Queued(id), &existing).ok());
  }
  auto lease = [&] {
    return store_->UpdateOldestQueued([](JobRecord* r) {
      r->job.set_state(esb::v1::JOB_STATE_RUNNING);
      r->lease_id = "L" + r->job.id();
      r->lease_deadline_ms = 100;
      return absl::OkStatus();
    });
  };
  auto first = lease();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->job.id(), "a");
  auto second = lease();
  EXPECT_EQ((*second)->job.id(), "b");
  // A failed mutation changes nothing.
  auto refused = store_->Update("c", [](JobRecord* r) {
    r->job.set_state(esb::v1::JOB_STATE_FAILED);
    return absl::AbortedError("no");
  });
  EXPECT_TRUE(absl::IsAborted(refused.status()));
  EXPECT_EQ(store_->Get("c")->job.state(), esb::v1::JOB_STATE_QUEUED);

  auto expired = store_->ExpiredLeases(150);
  ASSERT_TRUE(expired.ok());
  EXPECT_THAT(*expired, ::testing::UnorderedElementsAre("a", "b"));
  EXPECT_TRUE(store_->ExpiredLeases(50)->empty());

  // Reopened, the store has every change.
  store_.reset();
  auto reopened = SqliteJobStore::Open(path_);
  ASSERT_TRUE(reopened.ok());
  auto a = (*reopened)->Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->job.state(), esb::v1::JOB_STATE_RUNNING);
  EXPECT_EQ(a->lease_id, "La");
  auto counts = (*reopened)->CountByState();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[esb::v1::JOB_STATE_RUNNING], 2);
  EXPECT_EQ((*counts)[esb::v1::JOB_STATE_QUEUED], 1);
  auto third = (*reopened)->UpdateOldestQueued(
      [](JobRecord*) { return absl::OkStatus(); });
  EXPECT_EQ((*third)->job.id(), "c");
}

TEST_F(SqliteJobStoreTest, ListPagesNewestFirstAndFilters) {
  bool existing;
  for (int i = 0; i < 25; ++i) {
    JobRecord r = Queued(absl::StrCat("j", i));
    if (i % 5 == 0) r.job.set_state(esb::v1::JOB_STATE_FAILED);
    ASSERT_TRUE(store_->Insert(r, &existing).ok());
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = store_->List({}, 10, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& j : page->jobs) seen.push_back(j.id());
    token = page->next_page_token;
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "j24");
  EXPECT_EQ(seen.back(), "j0");
  EXPECT_EQ(pages, 3);
  auto failed = store_->List({esb::v1::JOB_STATE_FAILED}, 100, "");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->jobs.size(), 5u);
  EXPECT_TRUE(failed->next_page_token.empty());
  EXPECT_TRUE(absl::IsInvalidArgument(store_->List({}, 10, "x").status()));
}

TEST_F(SqliteJobStoreTest, RefusesANewerSchema) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  auto reopened = SqliteJobStore::Open(path_);
  EXPECT_TRUE(absl::IsFailedPrecondition(reopened.status()));
  EXPECT_THAT(reopened.status().message(), HasSubstr("schema version 99"));
}

TEST_F(SqliteJobStoreTest, RetentionQueries) {
  bool existing;
  JobRecord done = Queued("done");
  done.job.set_state(esb::v1::JOB_STATE_SUCCEEDED);
  done.job.set_finished_unix_ms(1000);
  done.job.add_artifacts()->mutable_blob()->set_sha256(std::string(64, 'b'));
  ASSERT_TRUE(store_->Insert(done, &existing).ok());
  ASSERT_TRUE(store_->Insert(Queued("live"), &existing).ok());
  auto old = store_->FinishedBefore(2000);
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(old->size(), 1u);
  EXPECT_EQ((*old)[0].job.id(), "done");
  EXPECT_TRUE(store_->FinishedBefore(500)->empty());
  auto live = store_->LiveBlobs();
  ASSERT_TRUE(live.ok());
  EXPECT_THAT(*live, ::testing::Contains(std::string(64, 'b')));
  ASSERT_TRUE(store_
                  ->Update("done",
                           [](JobRecord* r) {
                             r->job.set_artifacts_expired(true);
                             return absl::OkStatus();
                           })
                  .ok());
  EXPECT_THAT(*store_->LiveBlobs(),
              ::testing::Not(::testing::Contains(std::string(64, 'b'))));
  EXPECT_TRUE(store_->FinishedBefore(2000)->empty());
}

}  // namespace
}  // namespace esb::server
