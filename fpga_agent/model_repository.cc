#include "fpga_agent/model_repository.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/env/digest.h"
#include "fpga_agent/metrics.h"

namespace esb::agent {
namespace {

constexpr char kModelFile[] = "model.esbm";

// A version directory's name as its number: "1", "2", ... (no sign, no
// leading zeros).
bool ParseVersion(const std::string& text, int64_t* version) {
  if (text.empty() || text.size() > 18 || text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(text, version);
}

// The sha256 of a file read in pieces (versions not served are not kept in
// memory).
absl::StatusOr<std::string> FileSha256(Env* env, const std::string& path) {
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  Sha256Stream digest;
  std::string scratch;
  while (true) {
    absl::string_view piece;
    if (absl::Status s = (*file)->Read(size_t{1} << 20, &scratch, &piece);
        !s.ok()) {
      return s;
    }
    if (piece.empty()) break;
    digest.Update(piece);
  }
  return digest.HexDigest();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(
    Env* env, Backend* backend, AgentMetrics* metrics,
    const ModelRepositoryOptions& options, std::ostream* log) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("--model-dir is required");
  }
  if (absl::Status s = env->CreateDirs(options.dir); !s.ok()) return s;
  auto repo = absl::WrapUnique(
      new ModelRepository(env, backend, metrics, options, log));
  absl::MutexLock lock(&repo->write_mu_);
  if (absl::Status s = repo->Scan(); !s.ok()) return s;
  return repo;
}

ModelRepository::~ModelRepository() {
  // Batchers finish their queued requests as the models go.
  absl::MutexLock lock(&mu_);
  entries_.clear();
}

std::string ModelRepository::VersionDir(const std::string& name,
                                        int64_t version) const {
  return absl::StrCat(options_.dir, "/", name, "/", version);
}

void ModelRepository::Log(absl::string_view message) const {
  if (log_ != nullptr) *log_ << "esb-agent: " << message << std::endl;
}

void ModelRepository::UpdateGauge() const {
  if (metrics_ == nullptr) return;
  int served = 0;
  for (const auto& [name, entry] : entries_) served += entry.served != nullptr;
  metrics_->ModelsLoaded(served);
}

absl::Status ModelRepository::Scan() {
  absl::StatusOr<std::vector<std::string>> names =
      env_->GetChildren(options_.dir);
  if (!names.ok()) return names.status();
  std::map<std::string, Entry> entries;
  for (const std::string& name : *names) {
    if (!ValidateName(name).ok()) {
      if (name != "." && name != "..") {
        Log(absl::StrCat("skipping '", name, "' in ", options_.dir,
                         ": not a model name"));
      }
      continue;
    }
    absl::StatusOr<std::vector<std::string>> versions =
        env_->GetChildren(absl::StrCat(options_.dir, "/", name));
    if (!versions.ok()) continue;  // A file, not a model's directory.
    Entry entry;
    for (const std::string& v : *versions) {
      int64_t version = 0;
      if (!ParseVersion(v, &version)) continue;
      const std::string path =
          absl::StrCat(VersionDir(name, version), "/", kModelFile);
      if (!env_->FileExists(path)) continue;  // A deploy cut short.
      absl::StatusOr<std::string> sha256 = FileSha256(env_, path);
      absl::StatusOr<uint64_t> size = env_->GetFileSize(path);
      if (!sha256.ok() || !size.ok()) {
        Log(absl::StrCat(
            "skipping version ", version, " of model '", name, "': ",
            (!sha256.ok() ? sha256.status() : size.status()).ToString()));
        continue;
      }
      entry.versions[version] = *sha256;
      entry.sizes[version] = static_cast<int64_t>(*size);
    }
    if (entry.versions.empty()) continue;
    ServeLatest(name, &entry);
    entries.emplace(name, std::move(entry));
  }
  absl::MutexLock lock(&mu_);
  entries_ = std::move(entries);
  UpdateGauge();
  return absl::OkStatus();
}

void ModelRepository::ServeLatest(const std::string& name, Entry* entry) {
  entry->served = nullptr;
  for (auto it = entry->versions.rbegin(); it != entry->versions.rend(); ++it) {
    const int64_t version = it->first;
    const std::string path =
        absl::StrCat(VersionDir(name, version), "/", kModelFile);
    absl::StatusOr<std::string> bytes =
        ReadFileToString(env_, path, options_.max_model_bytes);
    absl::StatusOr<std::shared_ptr<const ServedModel>> served =
        bytes.ok() ? Build(name, version, it->second, *bytes)
                   : absl::StatusOr<std::shared_ptr<const ServedModel>>(
                         bytes.status());
    if (served.ok()) {
      entry->served = *std::move(served);
      Log(absl::StrCat("serving model '", name, "' version ", version, " (",
                       entry->served->description, ")"));
      return;
    }
    Log(absl::StrCat("cannot serve version ", version, " of model '", name,
                     "' (", path, "): ", served.status().ToString(),
                     "; trying the version before it"));
  }
  Log(absl::StrCat("no stored version of model '", name, "' can be served"));
}

absl::StatusOr<std::shared_ptr<const ServedModel>> ModelRepository::Build(
    const std::string& name, int64_t version, const std::string& sha256,
    absl::string_view bytes) const {
  const std::string actual = Sha256Hex(bytes);
  if (actual != sha256) {
    return absl::InvalidArgumentError(
        absl::StrCat("sha256 mismatch: declared ", sha256, ", received ",
                     actual, " (", bytes.size(), " bytes)"));
  }
  absl::StatusOr<esb::v1::Package> package = pipeline::ParsePackage(bytes);
  if (!package.ok()) return package.status();
  absl::StatusOr<pipeline::PackagedModel> unpacked =
      pipeline::UnpackPackage(*package);
  if (!unpacked.ok()) return unpacked.status();
  if (unpacked->graph.inputs.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model has ", unpacked->graph.inputs.size(),
                     " inputs; esb-agent serves models with one input"));
  }
  if (unpacked->graph.inputs[0].shape.empty()) {
    return absl::InvalidArgumentError(
        "the model's input is a scalar; dim 0 must be the batch");
  }
  auto served = std::make_shared<ServedModel>();
  served->name = name;
  served->version = version;
  served->sha256 = sha256;
  served->size = static_cast<int64_t>(bytes.size());
  served->package = *std::move(unpacked);
  absl::StatusOr<std::unique_ptr<LoadedModel>> loaded =
      backend_->Prepare(served->package, options_.batcher.max_batch);
  if (!loaded.ok()) return loaded.status();
  served->loaded = *std::move(loaded);
  served->description = served->loaded->Description();
  served->batcher = std::make_unique<Batcher>(served->loaded.get(),
                                              options_.batcher, metrics_, name);
  served->signature = std::make_shared<const ModelSignature>(
      SignatureOf(name, served->package, served->batcher->max_batch()));
  return served;
}

absl::StatusOr<std::shared_ptr<const ServedModel>> ModelRepository::Deploy(
    const std::string& name, const std::string& sha256,
    absl::string_view bytes) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sha256 '", sha256, "' is not 64 lowercase hex characters"));
  }
  if (static_cast<int64_t>(bytes.size()) > options_.max_model_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("model of ", bytes.size(), " bytes is over the limit of ",
                     options_.max_model_bytes, " bytes"));
  }
  absl::MutexLock write_lock(&write_mu_);
  // The next version is past every version directory, even one a crashed
  // deploy left without its file.
  int64_t version = 1;
  absl::StatusOr<std::vector<std::string>> existing =
      env_->GetChildren(absl::StrCat(options_.dir, "/", name));
  if (existing.ok()) {
    for (const std::string& v : *existing) {
      int64_t n = 0;
      if (ParseVersion(v, &n)) version = std::max(version, n + 1);
    }
  }
  absl::StatusOr<std::shared_ptr<const ServedModel>> served =
      Build(name, version, sha256, bytes);
  if (!served.ok()) return served.status();
  const std::string dir = VersionDir(name, version);
  if (absl::Status s = env_->CreateDirs(dir); !s.ok()) return s;
  if (absl::Status s =
          WriteFileAtomically(env_, absl::StrCat(dir, "/", kModelFile), bytes);
      !s.ok()) {
    return s;
  }
  // The new version directory's entry in the name's directory.
  if (absl::Status s = env_->SyncDir(absl::StrCat(options_.dir, "/", name));
      !s.ok()) {
    return s;
  }
  std::shared_ptr<const ServedModel> previous;
  {
    absl::MutexLock lock(&mu_);
    Entry& entry = entries_[name];
    entry.versions[version] = sha256;
    entry.sizes[version] = static_cast<int64_t>(bytes.size());
    previous = std::move(entry.served);
    entry.served = *served;
    UpdateGauge();
  }
  Log(absl::StrCat("deployed model '", name, "' version ", version, " (",
                   (*served)->description, ")"));
  previous.reset();  // Outside mu_: its batcher drains its queue.
  return served;
}

absl::StatusOr<UnloadResult> ModelRepository::Unload(const std::string& name,
                                                     int64_t version) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  if (version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("version ", version, " is negative; 0 means all"));
  }
  absl::MutexLock write_lock(&write_mu_);
  Entry entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      return absl::NotFoundError(
          absl::StrCat("model '", name, "' is not deployed"));
    }
    if (version != 0 && it->second.versions.count(version) == 0) {
      std::vector<std::string> have;
      for (const auto& [v, sha] : it->second.versions) {
        have.push_back(absl::StrCat(v));
      }
      return absl::NotFoundError(
          absl::StrCat("model '", name, "' has no version ", version,
                       "; it has ", absl::StrJoin(have, ", ")));
    }
    entry = it->second;
  }
  UnloadResult result;
  std::vector<int64_t> remove;
  for (const auto& [v, sha] : entry.versions) {
    if (version == 0 || v == version) remove.push_back(v);
  }
  for (int64_t v : remove) {
    const std::string dir = VersionDir(name, v);
    // The file first: a version without its file is not loaded again.
    if (absl::Status s = env_->DeleteFile(absl::StrCat(dir, "/", kModelFile));
        !s.ok() && !absl::IsNotFound(s)) {
      return s;
    }
    absl::StatusOr<std::vector<std::string>> left = env_->GetChildren(dir);
    if (left.ok()) {
      for (const std::string& f : *left) {
        if (f != "." && f != "..") {
          env_->DeleteFile(absl::StrCat(dir, "/", f)).IgnoreError();
        }
      }
    }
    entry.versions.erase(v);
    entry.sizes.erase(v);
    result.removed_versions.push_back(v);
  }
  if (absl::Status s = env_->SyncDir(absl::StrCat(options_.dir, "/", name));
      !s.ok()) {
    return s;
  }
  std::shared_ptr<const ServedModel> previous = entry.served;
  if (entry.served != nullptr &&
      entry.versions.count(entry.served->version) == 0) {
    ServeLatest(name, &entry);
  }
  result.serving_version = entry.served == nullptr ? 0 : entry.served->version;
  {
    absl::MutexLock lock(&mu_);
    if (entry.versions.empty()) {
      entries_.erase(name);
    } else {
      entries_[name] = std::move(entry);
    }
    UpdateGauge();
  }
  Log(absl::StrCat("unloaded model '", name, "' version",
                   remove.size() == 1 ? " " : "s ",
                   absl::StrJoin(remove, ", ")));
  previous.reset();
  return result;
}

absl::StatusOr<std::shared_ptr<const ServedModel>> ModelRepository::Get(
    const std::string& name, int64_t version) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.served == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("model '", name, "' is not deployed on this board"));
  }
  const Entry& entry = it->second;
  if (version != 0 && version != entry.served->version) {
    if (entry.versions.count(version) > 0) {
      return absl::NotFoundError(
          absl::StrCat("version ", version, " of model '", name,
                       "' is stored but not served; only the latest version (",
                       entry.served->version, ") is"));
    }
    return absl::NotFoundError(
        absl::StrCat("model '", name, "' has no version ", version,
                     "; the served version is ", entry.served->version));
  }
  return entry.served;
}

std::vector<StoredVersion> ModelRepository::List() const {
  std::vector<StoredVersion> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, entry] : entries_) {
    for (const auto& [version, sha256] : entry.versions) {
      StoredVersion v;
      v.name = name;
      v.version = version;
      v.sha256 = sha256;
      v.size = entry.sizes.at(version);
      if (entry.served != nullptr && entry.served->version == version) {
        v.serving = true;
        v.description = entry.served->description;
        v.max_batch = entry.served->batcher->max_batch();
      }
      out.push_back(std::move(v));
    }
  }
  return out;
}

std::vector<int64_t> ModelRepository::Versions(const std::string& name) const {
  std::vector<int64_t> out;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return out;
  for (const auto& [version, sha256] : it->second.versions) {
    out.push_back(version);
  }
  return out;
}

int ModelRepository::served_count() const {
  absl::MutexLock lock(&mu_);
  int served = 0;
  for (const auto& [name, entry] : entries_) served += entry.served != nullptr;
  return served;
}

}  // namespace esb::agent
