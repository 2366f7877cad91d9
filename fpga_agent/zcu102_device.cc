#include "fpga_agent/zcu102_device.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/accel/registers.h"

namespace esb::agent {
namespace {

// How long a self-clearing CTRL bit or a STATUS clear may take to show.
constexpr absl::Duration kRegisterSettle = absl::Milliseconds(100);

}  // namespace

absl::StatusOr<std::unique_ptr<Zcu102Device>> Zcu102Device::Open(
    std::unique_ptr<Uio> uio, const Zcu102DeviceOptions& options) {
  const std::string where = uio->device_path();
  const uint32_t id = uio->Read32(accel::kRegId);
  if (id != accel::kIdValue) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is not the ESB accelerator: ID reads 0x%08x, not 0x%08x (\"ESB1\")",
        where, id, accel::kIdValue));
  }
  const uint32_t version = uio->Read32(accel::kRegVersion);
  if ((version >> 16) != accel::kVersionMajor) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: accelerator version %d.%d, this agent drives major version %d",
        where, version >> 16, version & 0xFFFFu, accel::kVersionMajor));
  }
  const uint32_t caps = uio->Read32(accel::kRegCaps);
  accel::ArrayConfig config;
  config.rows = accel::CapsRows(caps);
  config.cols = accel::CapsCols(caps);
  config.max_sb = accel::CapsMaxSb(caps);
  config.clock_khz = uio->Read32(accel::kRegClockKhz);
  if (config.rows == 0 || config.cols == 0 || config.max_sb == 0 ||
      config.clock_khz == 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: CAPS 0x%08x and CLOCK_KHZ %u describe no PE array",
                        where, caps, config.clock_khz));
  }
  const bool use_interrupt = uio->has_interrupt() && !options.poll;
  return std::unique_ptr<Zcu102Device>(
      new Zcu102Device(std::move(uio), config, version, use_interrupt));
}

void Zcu102Device::Reset() {
  IoBarrier();
  uio_->Write32(accel::kRegCtrl, accel::kCtrlReset);
  IoBarrier();
}

std::string Zcu102Device::last_failure() const {
  absl::MutexLock lock(&failure_mu_);
  return last_failure_;
}

bool Zcu102Device::WaitForClear(uint32_t reg, uint32_t mask,
                                absl::Time deadline) {
  absl::Duration pause = absl::Microseconds(10);
  for (;;) {
    if ((uio_->Read32(reg) & mask) == 0) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(1));
  }
}

absl::StatusOr<bool> Zcu102Device::WaitForEnd(absl::Time deadline) {
  constexpr uint32_t kEnd = accel::kStatusDone | accel::kStatusError;
  if (!use_interrupt_) {
    absl::Duration pause = absl::Microseconds(10);
    for (;;) {
      if (uio_->Read32(accel::kRegStatus) & kEnd) return true;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      absl::SleepFor(std::min(pause, left));
      pause = std::min(pause * 2, absl::Milliseconds(1));
    }
  }
  // Each run's interrupt is taken, so none is left for the next run to
  // mistake for its own (it would cost a wake-up, not a wrong result:
  // STATUS decides).
  for (;;) {
    absl::StatusOr<bool> interrupted =
        uio_->WaitForInterrupt(deadline - absl::Now());
    if (!interrupted.ok()) return interrupted.status();
    if (!*interrupted) {
      // One last look: an interrupt lost in flight still ends the run.
      return (uio_->Read32(accel::kRegStatus) & kEnd) != 0;
    }
    if (uio_->Read32(accel::kRegStatus) & kEnd) return true;
    // A stale interrupt (of an earlier run): wait for the next one.
    if (absl::Status s = uio_->UnmaskInterrupt(); !s.ok()) return s;
  }
}

absl::StatusOr<accel::DeviceRun> Zcu102Device::Run(uint64_t program_offset,
                                                   absl::Duration timeout) {
  absl::StatusOr<accel::DeviceRun> run = RunLocked(program_offset, timeout);
  absl::MutexLock lock(&failure_mu_);
  if (run.ok()) {
    last_failure_.clear();
  } else {
    last_failure_ = std::string{run.status().message()};
  }
  return run;
}

absl::StatusOr<accel::DeviceRun> Zcu102Device::RunLocked(
    uint64_t program_offset, absl::Duration timeout) {
  const std::string& where = uio_->device_path();
  const absl::Time settle = absl::Now() + kRegisterSettle;
  if (!WaitForClear(accel::kRegCtrl, accel::kCtrlStart | accel::kCtrlReset,
                    settle)) {
    wedged_ = true;
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: CTRL still 0x%08x: the accelerator does not take commands", where,
        uio_->Read32(accel::kRegCtrl)));
  }
  const uint32_t before = uio_->Read32(accel::kRegStatus);
  if (before & accel::kStatusBusy) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: the accelerator is busy (STATUS 0x%08x)", where, before));
  }
  uio_->Write32(accel::kRegStatus, accel::kStatusDone | accel::kStatusError);
  if (!WaitForClear(accel::kRegStatus, accel::kStatusDone | accel::kStatusError,
                    settle)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: STATUS still 0x%08x after writing 1 to done and error", where,
        uio_->Read32(accel::kRegStatus)));
  }
  uio_->Write32(accel::kRegProgramLo,
                static_cast<uint32_t>(program_offset & 0xFFFFFFFFu));
  uio_->Write32(accel::kRegProgramHi,
                static_cast<uint32_t>(program_offset >> 32));
  uint32_t ctrl = accel::kCtrlStart;
  if (use_interrupt_) {
    if (absl::Status s = uio_->UnmaskInterrupt(); !s.ok()) return s;
    ctrl |= accel::kCtrlInterruptEnable;
  }
  // The program and its data in map1 reach the device before START.
  IoBarrier();
  uio_->Write32(accel::kRegCtrl, ctrl);

  absl::StatusOr<bool> ended = WaitForEnd(absl::Now() + timeout);
  if (!ended.ok()) return ended.status();
  if (!*ended) {
    const uint32_t status = uio_->Read32(accel::kRegStatus);
    Reset();
    wedged_ = true;
    return absl::DeadlineExceededError(absl::StrFormat(
        "%s: the accelerator did not finish the program at 0x%x within %s "
        "(STATUS 0x%08x, %s); reset it",
        where, program_offset, absl::FormatDuration(timeout), status,
        use_interrupt_ ? "waiting for its interrupt" : "polling STATUS"));
  }
  wedged_ = false;
  // The device's writes to map1 are seen after this.
  IoBarrier();
  const uint32_t status = uio_->Read32(accel::kRegStatus);
  accel::DeviceRun run;
  run.cycles = static_cast<int64_t>(
      (static_cast<uint64_t>(uio_->Read32(accel::kRegCyclesHi)) << 32) |
      uio_->Read32(accel::kRegCyclesLo));
  run.layers_done = static_cast<int32_t>(uio_->Read32(accel::kRegLayersDone));
  if (status & accel::kStatusError) {
    const auto code = static_cast<uint8_t>((status & accel::kStatusErrorMask) >>
                                           accel::kStatusErrorShift);
    return absl::InternalError(absl::StrFormat(
        "%s: accelerator error '%s' (code %d) after %d layers (program at "
        "0x%x)",
        where, accel::DeviceErrorName(code), code, run.layers_done,
        program_offset));
  }
  return run;
}

}  // namespace esb::agent
