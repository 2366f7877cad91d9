// The accelerator behind its register interface (core/accel/registers.h,
// DESIGN.md section 7.1) over UIO: an accel::Device for the model runner.
//
// Open checks ID and VERSION's major and reads CAPS and CLOCK_KHZ into the
// array's config. A run:
//
//   1. waits (bounded) for CTRL's start and reset bits to clear (both are
//      self-clearing: the device clears them when it acts on them);
//      FAILED_PRECONDITION when STATUS says busy;
//   2. clears STATUS (writes 1 to done and error) and reads it back until
//      they read 0;
//   3. writes PROGRAM (lo, then hi), unmasks the interrupt and writes CTRL
//      start (with interrupt enable when interrupts are used);
//   4. waits for done or error: for the interrupt (reading STATUS after
//      each, re-unmasking on a stale one, and at the timeout) or, polling,
//      reading STATUS with
//      a growing pause (10 us to 1 ms), never past the timeout;
//   5. on error: INTERNAL "accelerator error 'bad layer descriptor'
//      (code 4) after 2 layers (program at 0x1000)"; on done: CYCLES and
//      LAYERS_DONE. On the timeout: CTRL reset, DEADLINE_EXCEEDED, and the
//      device counts as wedged (wedged()) until a run ends in done or
//      error again; so does a device whose CTRL bits never clear.
//
// Thread-compatible (accel::Device): the runner serializes Run.
#ifndef ESB_FPGA_AGENT_ZCU102_DEVICE_H_
#define ESB_FPGA_AGENT_ZCU102_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/accel/array.h"
#include "core/accel/device.h"
#include "fpga_agent/uio.h"

namespace esb::agent {

struct Zcu102DeviceOptions {
  // Poll STATUS even when the device has an interrupt.
  bool poll = false;
};

class Zcu102Device : public accel::Device {
 public:
  // FAILED_PRECONDITION naming the value when ID is not "ESB1", VERSION's
  // major is not accel::kVersionMajor, or CAPS / CLOCK_KHZ describe no
  // array (rows or columns 0, sb 0, clock 0).
  static absl::StatusOr<std::unique_ptr<Zcu102Device>> Open(
      std::unique_ptr<Uio> uio, const Zcu102DeviceOptions& options = {});

  accel::ArrayConfig config() const override { return config_; }
  absl::Span<uint8_t> buffer() override { return uio_->buffer(); }
  absl::StatusOr<accel::DeviceRun> Run(uint64_t program_offset,
                                       absl::Duration timeout) override;

  // Writes CTRL reset.
  void Reset();

  bool uses_interrupt() const { return use_interrupt_; }
  // True after a run timed out, until a run ends again.
  bool wedged() const { return wedged_.load(); }
  // Why the last run failed ("" after a completed run).
  std::string last_failure() const;
  uint32_t version() const { return version_; }
  const Uio& uio() const { return *uio_; }

 private:
  Zcu102Device(std::unique_ptr<Uio> uio, const accel::ArrayConfig& config,
               uint32_t version, bool use_interrupt)
      : uio_(std::move(uio)),
        config_(config),
        version_(version),
        use_interrupt_(use_interrupt) {}

  absl::StatusOr<accel::DeviceRun> RunLocked(uint64_t program_offset,
                                             absl::Duration timeout);
  // Waits until STATUS has done or error; false at `deadline`.
  absl::StatusOr<bool> WaitForEnd(absl::Time deadline);
  // Waits until (register & mask) == 0; false at `deadline`.
  bool WaitForClear(uint32_t reg, uint32_t mask, absl::Time deadline);

  const std::unique_ptr<Uio> uio_;
  const accel::ArrayConfig config_;
  const uint32_t version_;
  const bool use_interrupt_;
  std::atomic<bool> wedged_{false};
  mutable absl::Mutex failure_mu_;
  std::string last_failure_ ABSL_GUARDED_BY(failure_mu_);
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_ZCU102_DEVICE_H_
