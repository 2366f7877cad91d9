// Bitstream loading through the Linux FPGA Manager
// (<sysfs>/class/fpga_manager/<manager>/{flags,firmware,state,status}).
//
// A load copies the image into the firmware directory (where the kernel's
// firmware loader looks; /lib/firmware on a board) atomically, so the
// kernel never reads a half-written image, writes 0 to `flags` (a full,
// unencrypted bitstream), writes the image's file name to `firmware`, and
// then reads `state` until it is `operating` or an error state, polling at
// most `load_timeout` (the kernel's firmware write is synchronous, other
// managers and the emulator finish later). A failed load is
// FAILED_PRECONDITION naming the state and the contents of `status`.
//
// Thread-safe: loads are serialized.
#ifndef ESB_FPGA_AGENT_FPGA_MANAGER_H_
#define ESB_FPGA_AGENT_FPGA_MANAGER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace esb::agent {

struct FpgaManagerOptions {
  std::string sysfs_root = "/sys";
  // Where the kernel's firmware loader finds images by name.
  std::string firmware_dir = "/lib/firmware";
  std::string manager = "fpga0";  // <sysfs>/class/fpga_manager/<manager>.
  // How long `state` may take to reach `operating` or an error.
  absl::Duration load_timeout = absl::Seconds(30);
  absl::Duration poll_interval = absl::Milliseconds(5);
};

class FpgaManager {
 public:
  // NOT_FOUND naming the directory when the manager does not exist.
  static absl::StatusOr<std::unique_ptr<FpgaManager>> Create(
      const FpgaManagerOptions& options);

  // Loads the image at `image_path`, installed in the firmware directory
  // under its base name. INVALID_ARGUMENT when the base name is not a plain
  // file name; NOT_FOUND naming the path when the image is missing;
  // FAILED_PRECONDITION "FPGA Manager fpga0: load of 'x.bin' ended in
  // state 'write error' (status: ...)" on a failed load or one still
  // unfinished at the timeout; the file system's status when the copy
  // fails.
  absl::Status Load(const std::string& image_path);

  // The manager's `state` ("operating", "unknown", "write error", ...).
  absl::StatusOr<std::string> State() const;
  // The manager's `status` ("" when the file is absent, as on kernels
  // without it).
  std::string StatusText() const;

  const std::string& directory() const { return dir_; }

 private:
  FpgaManager(const FpgaManagerOptions& options, std::string dir)
      : options_(options), dir_(std::move(dir)) {}

  const FpgaManagerOptions options_;
  const std::string dir_;  // <sysfs>/class/fpga_manager/<manager>.
  absl::Mutex load_mu_;
};

// True for states a load ends in: "operating" and the "... error" states.
bool IsFinalFpgaState(absl::string_view state);

// True when `name` can be used as a file name inside a directory: not
// empty, no '/', not "." or "..", no NUL, at most 255 bytes.
bool IsPlainFileName(absl::string_view name);

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_FPGA_MANAGER_H_
