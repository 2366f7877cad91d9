// Where jobs live: the JobStore interface. The SQLite implementation is
// sqlite_job_store.h; the service logic (job_service.h) is written against
// this interface only.
//
// Every call that changes a job commits before it returns, so a reply the
// server sends never describes a state that a crash could undo.
#ifndef ESB_SERVER_JOB_STORE_H_
#define ESB_SERVER_JOB_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "esb/v1/service.pb.h"

namespace esb::server {

// A job with what the server keeps of its lease but never shows users.
struct JobRecord {
  esb::v1::Job job;
  std::string lease_id;           // The latest lease ("" before any).
  int64_t lease_deadline_ms = 0;  // RUNNING only.
};

// Changes a record in place; a non-OK status aborts the change and is
// returned by the store call.
using Mutation = std::function<absl::Status(JobRecord*)>;

struct JobPage {
  std::vector<esb::v1::Job> jobs;  // Newest first.
  std::string next_page_token;     // Empty on the last page.
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Stores a new job (its id and idempotency key set by the caller). When
  // the key is non-empty and names a stored job, stores nothing and
  // returns that job with *existing = true.
  virtual absl::StatusOr<esb::v1::Job> Insert(const JobRecord& record,
                                              bool* existing) = 0;

  // NOT_FOUND naming the id when there is no such job.
  virtual absl::StatusOr<JobRecord> Get(const std::string& id) = 0;

  // Jobs in `states` (all when empty), newest first, `page_size` at most;
  // INVALID_ARGUMENT for a token this store did not make.
  virtual absl::StatusOr<JobPage> List(
      const std::vector<esb::v1::JobState>& states, int page_size,
      const std::string& page_token) = 0;

  // Reads, changes and writes one job in a single transaction.
  virtual absl::StatusOr<JobRecord> Update(const std::string& id,
                                           const Mutation& mutate) = 0;

  // Applies `mutate` to the oldest QUEUED job in one transaction;
  // nullopt when none is queued.
  virtual absl::StatusOr<std::optional<JobRecord>> UpdateOldestQueued(
      const Mutation& mutate) = 0;

  // Ids of RUNNING jobs whose lease deadline is before `now_ms`.
  virtual absl::StatusOr<std::vector<std::string>> ExpiredLeases(
      int64_t now_ms) = 0;

  virtual absl::StatusOr<std::map<esb::v1::JobState, int64_t>>
  CountByState() = 0;

  // Jobs in a final state that finished before `before_ms`, whose
  // artifacts have not yet expired.
  virtual absl::StatusOr<std::vector<JobRecord>> FinishedBefore(
      int64_t before_ms) = 0;

  // Every blob a job not yet expired refers to (inputs and artifacts).
  virtual absl::StatusOr<std::vector<std::string>> LiveBlobs() = 0;
};

// True for SUCCEEDED, FAILED and CANCELLED.
bool IsFinal(esb::v1::JobState state);

// Every blob `job` refers to.
std::vector<std::string> BlobsOf(const esb::v1::Job& job);

}  // namespace esb::server

#endif  // ESB_SERVER_JOB_STORE_H_
