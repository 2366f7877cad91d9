// The agent's model repository: the models deployed to this board, on disk
// and prepared on the backend.
//
// Layout under the model directory:
//
//   <dir>/<name>/<version>/model.esbm     version = 1, 2, ...
//
// Every deploy of a name adds the next version; all stored versions are
// kept until unloaded, and the latest stored version of each name is the
// one served (prepared on the backend, with its own batcher). A deploy is
// verified before anything is written: the bytes' sha256 must equal the
// declared one, and ParsePackage + UnpackPackage + Backend::Prepare must
// succeed. The file is written atomically (WriteFileAtomically), so a crash
// leaves either no version or a whole one. Version numbers are never
// reused, even after an unload (an emptied version directory stays). Open
// loads every name's latest version again; a version that no longer loads
// (corrupt on disk) is reported on the log stream and skipped (it stays
// listed, not served), and the name's next older version is tried.
//
// Names are never used as paths unchecked: a name is 1..64 letters, digits,
// '-', '_' or '.', and never "." or "..".
//
// Thread-safe. Deploys and unloads are serialized; lookups run beside them
// and hand out shared references, so a model unloaded while requests use it
// lives until the last one finishes.
#ifndef ESB_FPGA_AGENT_MODEL_REPOSITORY_H_
#define ESB_FPGA_AGENT_MODEL_REPOSITORY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/env/env.h"
#include "core/package/esbm.h"
#include "fpga_agent/backend.h"
#include "fpga_agent/batcher.h"
#include "fpga_agent/infer_codec.h"
#include "fpga_agent/names.h"

namespace esb::agent {

class AgentMetrics;

// A model version being served. Immutable once built; shared by the
// repository and the requests using it.
struct ServedModel {
  std::string name;
  int64_t version = 0;
  std::string sha256;
  int64_t size = 0;  // Bytes of the .esbm.
  pipeline::PackagedModel package;
  std::unique_ptr<LoadedModel> loaded;
  std::unique_ptr<Batcher> batcher;  // Runs `loaded`.
  std::string description;           // loaded->Description().
  // Batches up to batcher->max_batch(). Shared with requests in flight.
  std::shared_ptr<const ModelSignature> signature;
};

// What ListModels and BoardStatus report about a stored version.
struct StoredVersion {
  std::string name;
  int64_t version = 0;
  std::string sha256;
  int64_t size = 0;
  bool serving = false;
  std::string description;  // Set when serving.
  int max_batch = 0;        // Set when serving.
};

struct ModelRepositoryOptions {
  std::string dir;  // Required; created when missing.
  // Images per backend run and batcher settings of every served model.
  BatcherOptions batcher;
  // Largest .esbm accepted.
  int64_t max_model_bytes = int64_t{1} << 30;
};

struct UnloadResult {
  std::vector<int64_t> removed_versions;
  int64_t serving_version = 0;  // 0: none left.
};

class ModelRepository {
 public:
  // Opens (creating) options.dir and serves every stored model's latest
  // loadable version. None of env, backend, metrics (may be null) and log
  // is owned; all must outlive the repository.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Open(
      Env* env, Backend* backend, AgentMetrics* metrics,
      const ModelRepositoryOptions& options, std::ostream* log);
  ~ModelRepository();

  // Verifies `bytes` (see the file comment), stores them as the next
  // version of `name` and serves it. INVALID_ARGUMENT naming the problem
  // (name, "sha256 mismatch: declared ..., received ...", the package's
  // own error), RESOURCE_EXHAUSTED past max_model_bytes, the Env's status
  // on a failed write. Nothing is stored or changed on failure.
  absl::StatusOr<std::shared_ptr<const ServedModel>> Deploy(
      const std::string& name, const std::string& sha256,
      absl::string_view bytes);

  // Removes `version` of `name` (0: every version) from serving and disk;
  // when the served version goes, the next older stored one is served.
  // NOT_FOUND naming the model or version.
  absl::StatusOr<UnloadResult> Unload(const std::string& name, int64_t version);

  // The served model `name`; `version` 0 means the latest. NOT_FOUND
  // naming the model, or the version (which may be stored but not
  // served: only the latest is).
  absl::StatusOr<std::shared_ptr<const ServedModel>> Get(
      const std::string& name, int64_t version) const;

  // Every stored version, by name then version.
  std::vector<StoredVersion> List() const;
  // The versions of `name` stored on disk, ascending (empty when none).
  std::vector<int64_t> Versions(const std::string& name) const;
  int served_count() const;

 private:
  ModelRepository(Env* env, Backend* backend, AgentMetrics* metrics,
                  ModelRepositoryOptions options, std::ostream* log)
      : env_(env),
        backend_(backend),
        metrics_(metrics),
        options_(std::move(options)),
        log_(log) {}

  struct Entry {
    std::map<int64_t, std::string> versions;  // Version -> sha256.
    std::map<int64_t, int64_t> sizes;         // Version -> bytes.
    std::shared_ptr<const ServedModel> served;
  };

  std::string VersionDir(const std::string& name, int64_t version) const;
  // Parses, unpacks and prepares the bytes of a version.
  absl::StatusOr<std::shared_ptr<const ServedModel>> Build(
      const std::string& name, int64_t version, const std::string& sha256,
      absl::string_view bytes) const;
  // Serves the newest loadable stored version of `entry`; the versions
  // that fail to load are reported on the log. None when none loads.
  void ServeLatest(const std::string& name, Entry* entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status Scan() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void Log(absl::string_view message) const;
  void UpdateGauge() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Env* const env_;
  Backend* const backend_;
  AgentMetrics* const metrics_;
  const ModelRepositoryOptions options_;
  std::ostream* const log_;

  // Held by deploys and unloads for their whole length (disk and map);
  // mu_ only around reading or swapping the map.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_MODEL_REPOSITORY_H_
