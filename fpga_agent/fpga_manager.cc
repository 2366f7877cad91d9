#include "fpga_agent/fpga_manager.h"

#include <sys/stat.h>

#include <cerrno>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/env/env.h"
#include "fpga_agent/sysfs.h"

namespace esb::agent {
namespace {

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

bool IsFinalFpgaState(absl::string_view state) {
  return state == "operating" || absl::EndsWith(state, " error");
}

bool IsPlainFileName(absl::string_view name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == absl::string_view::npos &&
         name.find('\0') == absl::string_view::npos;
}

absl::StatusOr<std::unique_ptr<FpgaManager>> FpgaManager::Create(
    const FpgaManagerOptions& options) {
  std::string dir = JoinPath(
      options.sysfs_root, absl::StrCat("class/fpga_manager/", options.manager));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(
        absl::StrCat("no FPGA Manager: ", dir, " does not exist"));
  }
  return std::unique_ptr<FpgaManager>(new FpgaManager(options, std::move(dir)));
}

absl::StatusOr<std::string> FpgaManager::State() const {
  return ReadAttribute(JoinPath(dir_, "state"));
}

std::string FpgaManager::StatusText() const {
  absl::StatusOr<std::string> text = ReadAttribute(JoinPath(dir_, "status"));
  return text.ok() ? *text : "";
}

absl::Status FpgaManager::Load(const std::string& image_path) {
  const std::string name = BaseName(image_path);
  if (!IsPlainFileName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", image_path, "' does not name a bitstream file"));
  }
  absl::MutexLock lock(&load_mu_);
  Env* env = Env::Default();
  if (!env->FileExists(image_path)) {
    return absl::NotFoundError(
        absl::StrCat("bitstream ", image_path, " does not exist"));
  }
  absl::StatusOr<std::string> image = ReadFileToString(env, image_path);
  if (!image.ok()) return image.status();
  if (absl::Status s = env->CreateDirs(options_.firmware_dir); !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteFileAtomically(
          env, JoinPath(options_.firmware_dir, name), *image);
      !s.ok()) {
    return s;
  }

  const std::string manager = absl::StrCat("FPGA Manager ", options_.manager);
  if (absl::Status s = WriteAttribute(JoinPath(dir_, "flags"), "0"); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(manager, ": ", s.message()));
  }
  // The kernel reports a failed load as a failed write too; the state and
  // status say why, so they are read either way.
  const absl::Status written = WriteAttribute(JoinPath(dir_, "firmware"), name);

  const absl::Time deadline = absl::Now() + options_.load_timeout;
  std::string state;
  for (;;) {
    absl::StatusOr<std::string> read = State();
    if (!read.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          manager, ": load of '", name, "': ", read.status().message()));
    }
    state = *read;
    if (IsFinalFpgaState(state) || absl::Now() >= deadline) break;
    absl::SleepFor(options_.poll_interval);
  }
  if (state == "operating" && written.ok()) return absl::OkStatus();

  std::string why = absl::StrCat(manager, ": load of '", name, "' ");
  if (IsFinalFpgaState(state)) {
    absl::StrAppend(&why, "ended in state '", state, "'");
  } else {
    absl::StrAppend(&why, "still in state '", state, "' after ",
                    absl::FormatDuration(options_.load_timeout));
  }
  const std::string status = StatusText();
  if (!status.empty()) absl::StrAppend(&why, " (status: ", status, ")");
  if (!written.ok()) absl::StrAppend(&why, "; ", written.message());
  return absl::FailedPreconditionError(why);
}

}  // namespace esb::agent
