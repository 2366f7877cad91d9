// JobStore on SQLite: one database file (WAL journal, synchronous=FULL, so
// a commit survives a power cut), schema versioned with PRAGMA
// user_version and migrated forward on open.
//
// Thread-safe: one connection, serialized by a mutex; SQLite's own work
// per call is a few small indexed reads and writes.
#ifndef ESB_SERVER_SQLITE_JOB_STORE_H_
#define ESB_SERVER_SQLITE_JOB_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/job_store.h"

struct sqlite3;

namespace esb::server {

class SqliteJobStore : public JobStore {
 public:
  // The schema version this build writes.
  static constexpr int kSchemaVersion = 1;

  // Opens (creating when missing) the database at `path`. FAILED_PRECONDITION
  // when it was written by a newer schema; INTERNAL naming SQLite's error
  // otherwise.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(
      const std::string& path);
  ~SqliteJobStore() override;

  absl::StatusOr<esb::v1::Job> Insert(const JobRecord& record,
                                      bool* existing) override;
  absl::StatusOr<JobRecord> Get(const std::string& id) override;
  absl::StatusOr<JobPage> List(const std::vector<esb::v1::JobState>& states,
                               int page_size,
                               const std::string& page_token) override;
  absl::StatusOr<JobRecord> Update(const std::string& id,
                                   const Mutation& mutate) override;
  absl::StatusOr<std::optional<JobRecord>> UpdateOldestQueued(
      const Mutation& mutate) override;
  absl::StatusOr<std::vector<std::string>> ExpiredLeases(
      int64_t now_ms) override;
  absl::StatusOr<std::map<esb::v1::JobState, int64_t>> CountByState() override;
  absl::StatusOr<std::vector<JobRecord>> FinishedBefore(
      int64_t before_ms) override;
  absl::StatusOr<std::vector<std::string>> LiveBlobs() override;

 private:
  explicit SqliteJobStore(sqlite3* db) : db_(db) {}

  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<JobRecord>> Load(const std::string& where,
                                                const std::string& arg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Store(const JobRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<JobRecord>> Mutate(const std::string& where,
                                                  const std::string& arg,
                                                  const Mutation& mutate)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace esb::server

#endif  // ESB_SERVER_SQLITE_JOB_STORE_H_
