#include "server/sqlite_job_store.h"

#include <sqlite3.h>

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/memory/memory.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace esb::server {

bool IsFinal(esb::v1::JobState state) {
  return state == esb::v1::JOB_STATE_SUCCEEDED ||
         state == esb::v1::JOB_STATE_FAILED ||
         state == esb::v1::JOB_STATE_CANCELLED;
}

std::vector<std::string> BlobsOf(const esb::v1::Job& job) {
  std::vector<std::string> blobs;
  const esb::v1::JobInputs& in = job.inputs();
  for (const std::string* sha :
       {&in.model().sha256(), &in.calib().blob().sha256(),
        &in.eval().blob().sha256(), &in.eval_labels().blob().sha256()}) {
    if (!sha->empty()) blobs.push_back(*sha);
  }
  for (const esb::v1::Artifact& a : job.artifacts()) {
    blobs.push_back(a.blob().sha256());
  }
  return blobs;
}

namespace {

// Schema migrations, applied in order: entry i takes the database from
// version i to version i + 1.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  state INTEGER NOT NULL,
  idempotency_key TEXT UNIQUE,
  lease_id TEXT NOT NULL DEFAULT '',
  lease_deadline_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  expired INTEGER NOT NULL DEFAULT 0,
  job BLOB NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, seq);
)sql",
};
static_assert(std::size(kMigrations) == SqliteJobStore::kSchemaVersion);

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  return absl::InternalError(
      absl::StrFormat("job store: %s: %s", what, sqlite3_errmsg(db)));
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    status_ =
        sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) == SQLITE_OK
            ? absl::OkStatus()
            : SqliteError(db, "prepare");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  const absl::Status& status() const { return status_; }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
  }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  // True while rows come; errors land in status().
  bool Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = SqliteError(db_, "step");
    return false;
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p == nullptr ? "" : reinterpret_cast<const char*>(p);
  }
  std::string Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? "" : std::string(static_cast<const char*>(p), n);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status status_;
};

constexpr char kColumns[] = "id, lease_id, lease_deadline_ms, job";

absl::StatusOr<JobRecord> RecordFromRow(Statement& row) {
  JobRecord record;
  record.lease_id = row.Text(1);
  record.lease_deadline_ms = row.Int(2);
  if (!record.job.ParseFromString(row.Blob(3))) {
    return absl::DataLossError(
        absl::StrCat("job store: job ", row.Text(0), " does not parse"));
  }
  return record;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(
    const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::InternalError(absl::StrFormat(
        "job store: cannot open %s: %s", path,
        db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return s;
  }
  auto store = absl::WrapUnique(new SqliteJobStore(db));
  absl::MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON"}) {
    if (absl::Status s = store->Exec(pragma); !s.ok()) return s;
  }
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  return store;
}

SqliteJobStore::~SqliteJobStore() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status SqliteJobStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    absl::Status s = absl::InternalError(
        absl::StrFormat("job store: %s: %s", sql, error ? error : "?"));
    sqlite3_free(error);
    return s;
  }
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Migrate() {
  Statement version(db_, "PRAGMA user_version");
  if (!version.status().ok()) return version.status();
  if (!version.Step()) return version.status();
  const int64_t at = version.Int(0);
  if (at > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "job store: the database has schema version %d, newer than this "
        "esb-server's %d; run a newer esb-server on this data dir",
        at, kSchemaVersion));
  }
  for (int64_t v = at; v < kSchemaVersion; ++v) {
    if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    absl::Status s = Exec(kMigrations[v]);
    if (s.ok()) {
      s = Exec(absl::StrCat("PRAGMA user_version=", v + 1).c_str());
    }
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return s;
    }
    if (absl::Status c = Exec("COMMIT"); !c.ok()) return c;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<JobRecord>> SqliteJobStore::Load(
    const std::string& where, const std::string& arg) {
  Statement q(db_, absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE ", where,
                                " LIMIT 1"));
  if (!q.status().ok()) return q.status();
  if (!arg.empty()) q.Bind(1, arg);
  if (!q.Step()) {
    if (!q.status().ok()) return q.status();
    return std::nullopt;
  }
  absl::StatusOr<JobRecord> record = RecordFromRow(q);
  if (!record.ok()) return record.status();
  return *std::move(record);
}

absl::Status SqliteJobStore::Store(const JobRecord& r) {
  Statement q(db_,
              "UPDATE jobs SET state = ?1, lease_id = ?2, "
              "lease_deadline_ms = ?3, finished_ms = ?4, expired = ?5, "
              "job = ?6 WHERE id = ?7");
  if (!q.status().ok()) return q.status();
  q.Bind(1, static_cast<int64_t>(r.job.state()));
  q.Bind(2, r.lease_id);
  q.Bind(3, r.lease_deadline_ms);
  q.Bind(4, r.job.finished_unix_ms());
  q.Bind(5, int64_t{r.job.artifacts_expired() ? 1 : 0});
  q.BindBlob(6, r.job.SerializeAsString());
  q.Bind(7, r.job.id());
  q.Step();
  return q.status();
}

absl::StatusOr<std::optional<JobRecord>> SqliteJobStore::Mutate(
    const std::string& where, const std::string& arg, const Mutation& mutate) {
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  bool done = false;
  absl::Cleanup rollback = [&] {
    if (!done) Exec("ROLLBACK").IgnoreError();
  };
  absl::StatusOr<std::optional<JobRecord>> record = Load(where, arg);
  if (!record.ok() || !record->has_value()) return record;
  const std::string id = (*record)->job.id();
  if (absl::Status s = mutate(&**record); !s.ok()) return s;
  (*record)->job.set_id(id);  // The id is the key; a mutation keeps it.
  if (absl::Status s = Store(**record); !s.ok()) return s;
  if (absl::Status s = Exec("COMMIT"); !s.ok()) return s;
  done = true;
  return record;
}

absl::StatusOr<esb::v1::Job> SqliteJobStore::Insert(const JobRecord& r,
                                                    bool* existing) {
  absl::MutexLock lock(&mu_);
  *existing = false;
  if (!r.job.idempotency_key().empty()) {
    absl::StatusOr<std::optional<JobRecord>> prior =
        Load("idempotency_key = ?1", r.job.idempotency_key());
    if (!prior.ok()) return prior.status();
    if (prior->has_value()) {
      *existing = true;
      return (*prior)->job;
    }
  }
  Statement q(db_,
              "INSERT INTO jobs (id, state, idempotency_key, job) "
              "VALUES (?1, ?2, ?3, ?4)");
  if (!q.status().ok()) return q.status();
  q.Bind(1, r.job.id());
  q.Bind(2, static_cast<int64_t>(r.job.state()));
  if (r.job.idempotency_key().empty()) {
    q.BindNull(3);
  } else {
    q.Bind(3, r.job.idempotency_key());
  }
  q.BindBlob(4, r.job.SerializeAsString());
  q.Step();
  if (!q.status().ok()) return q.status();
  // The remaining columns, as every later change writes them.
  if (absl::Status s = Store(r); !s.ok()) return s;
  return r.job;
}

absl::StatusOr<JobRecord> SqliteJobStore::Get(const std::string& id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::optional<JobRecord>> record = Load("id = ?1", id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) {
    return absl::NotFoundError(absl::StrCat("no job '", id, "'"));
  }
  return **std::move(record);
}

absl::StatusOr<JobPage> SqliteJobStore::List(
    const std::vector<esb::v1::JobState>& states, int page_size,
    const std::string& page_token) {
  int64_t before = INT64_MAX;
  if (!page_token.empty() &&
      (!absl::SimpleAtoi(page_token, &before) || before <= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token '", page_token, "' is not one ListJobs gave"));
  }
  std::string where = "seq < ?1";
  if (!states.empty()) {
    std::vector<int> values(states.begin(), states.end());
    absl::StrAppend(&where, " AND state IN (", absl::StrJoin(values, ","), ")");
  }
  absl::MutexLock lock(&mu_);
  Statement q(db_, absl::StrCat("SELECT ", kColumns, ", seq FROM jobs WHERE ",
                                where, " ORDER BY seq DESC LIMIT ?2"));
  if (!q.status().ok()) return q.status();
  q.Bind(1, before);
  q.Bind(2, int64_t{page_size} + 1);
  JobPage page;
  int64_t last_seq = 0;
  while (q.Step()) {
    if (static_cast<int>(page.jobs.size()) == page_size) {
      page.next_page_token = absl::StrCat(last_seq);
      break;
    }
    absl::StatusOr<JobRecord> record = RecordFromRow(q);
    if (!record.ok()) return record.status();
    page.jobs.push_back(std::move(record->job));
    last_seq = q.Int(4);
  }
  if (!q.status().ok()) return q.status();
  return page;
}

absl::StatusOr<JobRecord> SqliteJobStore::Update(const std::string& id,
                                                 const Mutation& mutate) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::optional<JobRecord>> record =
      Mutate("id = ?1", id, mutate);
  if (!record.ok()) return record.status();
  if (!record->has_value()) {
    return absl::NotFoundError(absl::StrCat("no job '", id, "'"));
  }
  return **std::move(record);
}

absl::StatusOr<std::optional<JobRecord>> SqliteJobStore::UpdateOldestQueued(
    const Mutation& mutate) {
  absl::MutexLock lock(&mu_);
  return Mutate(
      absl::StrCat("state = ", esb::v1::JOB_STATE_QUEUED, " ORDER BY seq ASC"),
      "", mutate);
}

absl::StatusOr<std::vector<std::string>> SqliteJobStore::ExpiredLeases(
    int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, absl::StrCat("SELECT id FROM jobs WHERE state = ",
                                esb::v1::JOB_STATE_RUNNING,
                                " AND lease_deadline_ms < ?1"));
  if (!q.status().ok()) return q.status();
  q.Bind(1, now_ms);
  std::vector<std::string> ids;
  while (q.Step()) ids.push_back(q.Text(0));
  if (!q.status().ok()) return q.status();
  return ids;
}

absl::StatusOr<std::map<esb::v1::JobState, int64_t>>
SqliteJobStore::CountByState() {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  if (!q.status().ok()) return q.status();
  std::map<esb::v1::JobState, int64_t> counts;
  while (q.Step()) {
    counts[static_cast<esb::v1::JobState>(q.Int(0))] = q.Int(1);
  }
  if (!q.status().ok()) return q.status();
  return counts;
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::FinishedBefore(
    int64_t before_ms) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, absl::StrCat("SELECT ", kColumns,
                                " FROM jobs WHERE expired = 0 AND "
                                "finished_ms > 0 AND finished_ms < ?1"));
  if (!q.status().ok()) return q.status();
  q.Bind(1, before_ms);
  std::vector<JobRecord> records;
  while (q.Step()) {
    absl::StatusOr<JobRecord> record = RecordFromRow(q);
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
  if (!q.status().ok()) return q.status();
  return records;
}

absl::StatusOr<std::vector<std::string>> SqliteJobStore::LiveBlobs() {
  absl::MutexLock lock(&mu_);
  Statement q(
      db_, absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE expired = 0"));
  if (!q.status().ok()) return q.status();
  std::vector<std::string> blobs;
  while (q.Step()) {
    absl::StatusOr<JobRecord> record = RecordFromRow(q);
    if (!record.ok()) return record.status();
    for (std::string& b : BlobsOf(record->job)) blobs.push_back(std::move(b));
  }
  if (!q.status().ok()) return q.status();
  return blobs;
}

}  // namespace esb::server
