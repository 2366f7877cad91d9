// Test support: a ZCU102 in a directory, for the zcu102 backend's tests
// (and end-to-end tests that start esb-agent with --sysfs-root and
// --dev-root pointing at it).
//
// The tree under `root`:
//
//   sys/class/fpga_manager/fpga0/{flags,firmware,state,status}
//   sys/class/uio/uioN/{name,maps/map0/{size,addr},maps/map1/{size,addr}}
//   sys/class/hwmon/hwmonN/{name,label|power1_label,power1_input}  (ina226)
//   sys/class/hwmon/hwmonN/{name,temp1_input}                      ("ams")
//   dev/uioN       a regular file of getpagesize() + map1 bytes: map0 (the
//                  registers) at offset 0, map1 at offset one page, so the
//                  UIO convention (map N at N * page) holds; both sides mmap
//                  it MAP_SHARED and see each other's writes.
//   dev/uioN.irq   the interrupt line (when options.interrupt): a Unix
//                  seqpacket socket with UIO's protocol, since a regular
//                  file cannot block a read (uio.h): the host writes a
//                  4-byte 1 to unmask, the emulator sends a 4-byte
//                  interrupt count when the line is high (STATUS done or
//                  error with CTRL interrupt enable) and masks it again.
//                  Without it the host polls STATUS.
//   firmware/      where the emulated kernel looks for images by name.
//
// One thread plays both the FPGA Manager and the accelerator, waking every
// `tick` (and on socket traffic):
//
//   FPGA Manager: a name written to `firmware` is taken (the file is
//   emptied) and loaded: state "operating" when firmware/<name> exists,
//   "firmware request error" when it does not, or the failure set with
//   FailLoads ("write error" and a status text). With SetFpgaSilent the
//   state never changes. The kernel's write is synchronous, the
//   emulator's is not: a load made while the state already reads
//   "operating" can see that state before the emulator takes the name, so
//   a test that loads twice waits for loads() between them.
//
//   Accelerator: plain memory cannot clear a bit when 1 is written to it,
//   so the emulator keeps the STATUS value it last wrote, always with bit
//   31 (reserved in the register map) set, and treats any other value
//   found there as the host's write-1-to-clear; a host never writes bit
//   31, so every write shows. (STATUS reads with bit 31 set, which the
//   host ignores like every reserved bit.) CTRL start
//   and reset are self-clearing (the emulator clears them when it acts).
//   START runs the program at PROGRAM with `execute` (accel::Execute by
//   default) on map1, then writes CYCLES, LAYERS_DONE and STATUS (done,
//   plus error and the code when the run failed) and raises the
//   interrupt. With SetHang the device takes START, stays busy and never
//   finishes, until CTRL reset.
//
// Thread-safe.
#ifndef ESB_FPGA_AGENT_EMULATOR_H_
#define ESB_FPGA_AGENT_EMULATOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/accel/array.h"
#include "core/accel/machine.h"
#include "core/accel/registers.h"

namespace esb::agent {

// Runs a program: accel::Execute's signature.
using ExecuteFunction = std::function<accel::MachineRun(
    absl::Span<uint8_t> buffer, uint64_t program_offset,
    const accel::ArrayConfig& config)>;

struct EmulatedRail {
  std::string label;  // "" for a device without a label.
  // Put the label in power1_label instead of label.
  bool power1_label = false;
  double watts = 0.0;
};

struct EmulatorOptions {
  std::string root;  // Created when missing.

  // The accelerator's registers: ID, VERSION, CAPS and CLOCK_KHZ.
  accel::ArrayConfig config;
  uint32_t id = accel::kIdValue;
  uint32_t version = accel::kVersionMajor << 16 | accel::kVersionMinor;
  uint64_t buffer_bytes = uint64_t{16} << 20;  // map1.
  uint64_t buffer_address = 0x60000000;        // map1's addr.
  // The accelerator's UIO name; "" for no accelerator device at all.
  std::string uio_name = accel::kUioName;
  // Other UIO devices, numbered before it (uio0, uio1, ...).
  std::vector<std::string> other_uio_names;
  // The UIO device appears at the first successful load (as with a
  // device-tree overlay), not at start.
  bool uio_on_load = false;
  bool interrupt = true;    // dev/uioN.irq.
  ExecuteFunction execute;  // Empty: accel::Execute.

  std::string fpga_state = "unknown";  // Before any load.

  std::vector<EmulatedRail> rails;      // INA226 devices, hwmon0...
  std::optional<double> temperature_c;  // An "ams" device after them.

  absl::Duration tick = absl::Microseconds(200);
};

class Emulator {
 public:
  // Builds the tree and starts the thread. INVALID_ARGUMENT when the
  // interrupt socket's path is too long for a Unix socket; the file
  // system's status naming the path on a failed write.
  static absl::StatusOr<std::unique_ptr<Emulator>> Start(
      EmulatorOptions options);
  ~Emulator();  // Stops the thread; leaves the tree.

  const std::string& sysfs_root() const { return sysfs_root_; }
  const std::string& dev_root() const { return dev_root_; }
  const std::string& firmware_dir() const { return firmware_dir_; }
  // sys/class/uio/uioN of the accelerator, dev/uioN ("" without one).
  std::string uio_device() const;

  // FPGA Manager. Loads from now on end in `state` with `status` (state
  // "" loads normally again).
  void FailLoads(const std::string& state, const std::string& status);
  void SetFpgaSilent(bool silent);
  int loads() const;               // Names taken from `firmware`.
  std::string last_flags() const;  // `flags` when the last name was taken.
  std::string last_firmware() const;

  // Accelerator.
  void SetHang(bool hang);
  int runs() const;        // STARTs taken.
  int resets() const;      // CTRL resets taken.
  int interrupts() const;  // Interrupts sent.
  uint64_t last_program_offset() const;
  // map1 as the emulator sees it (once the UIO device exists).
  absl::Span<uint8_t> buffer() { return {map1_, options_.buffer_bytes}; }

  // hwmon. `rail` indexes options.rails.
  absl::Status SetRailWatts(int rail, double watts);
  // Removes the rail's hwmonN directory, as when its driver unbinds.
  absl::Status RemoveRail(int rail);

 private:
  explicit Emulator(EmulatorOptions options);
  absl::Status Build();
  absl::Status CreateUio();
  void Loop();
  void ServeFpgaManager();
  void ServeRegisters();
  void ServeInterrupts(bool readable_listener);
  void StoreStatus(uint32_t value);  // With kStatusMark.
  uint32_t Load32(uint32_t offset) const;
  void Store32(uint32_t offset, uint32_t value);

  static constexpr uint32_t kStatusMark = 1u << 31;

  const EmulatorOptions options_;
  const std::string sysfs_root_, dev_root_, firmware_dir_, fpga_dir_;
  ExecuteFunction execute_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::string fail_state_ ABSL_GUARDED_BY(mu_);
  std::string fail_status_ ABSL_GUARDED_BY(mu_);
  bool fpga_silent_ ABSL_GUARDED_BY(mu_) = false;
  int loads_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_flags_ ABSL_GUARDED_BY(mu_);
  std::string last_firmware_ ABSL_GUARDED_BY(mu_);
  bool hang_ ABSL_GUARDED_BY(mu_) = false;
  int runs_ ABSL_GUARDED_BY(mu_) = 0;
  int resets_ ABSL_GUARDED_BY(mu_) = 0;
  int interrupts_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_program_offset_ ABSL_GUARDED_BY(mu_) = 0;
  std::string uio_device_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> rail_dirs_;  // Set in Build.

  // Owned by the thread (and Build before it starts).
  int file_fd_ = -1;
  uint8_t* mapping_ = nullptr;  // dev/uioN, page + map1.
  uint64_t mapping_bytes_ = 0;
  uint8_t* map1_ = nullptr;
  std::atomic<bool> uio_ready_{false};
  int listen_fd_ = -1;
  struct Client {
    int fd = -1;
    bool unmasked = false;
  };
  std::vector<Client> clients_;
  uint32_t status_shadow_ = 0;
  bool busy_ = false;
  uint32_t interrupt_count_ = 0;
};

// A fresh empty directory for an emulator,
// /tmp/esb-zcu102.<pid>/<n>-<name> (under $TEST_TMPDIR when that is set),
// with at most 40 bytes of `name` and '/' made '_', so that the interrupt
// socket's path fits a Unix socket.
absl::StatusOr<std::string> FreshEmulatorRoot(const std::string& name);
// FreshEmulatorRoot, holding <root>/bitstreams/<bitstream> with `bytes`: the
// bitstream directory of a backend under test.
absl::StatusOr<std::string> FreshEmulatorRootWithBitstream(
    const std::string& name, const std::string& bitstream,
    const std::string& bytes);
// Removes every directory FreshEmulatorRoot made in this process (their
// emulators stopped first).
void RemoveEmulatorRoots();

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_EMULATOR_H_
