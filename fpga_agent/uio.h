// The accelerator's UIO device (DESIGN.md section 7.1): discovery by name
// under <sysfs>/class/uio, its two maps mmapped from <dev>/uioN, 32-bit
// register access and the interrupt.
//
// UIO's conventions: map N of uioN is mmapped from /dev/uioN at offset
// N * getpagesize(); its size and physical address are in
// <sysfs>/class/uio/uioN/maps/mapN/{size,addr}. Writing a 4-byte 1 to the
// device unmasks its interrupt; a 4-byte read blocks until the next one
// and returns the interrupt count.
//
// The interrupt line. When <dev>/uioN is a character device (a board), the
// interrupt is read from it as above. When it is a regular file (the
// device emulator's: a file both sides mmap, emulator.h), a regular file
// cannot block a read, so the interrupt comes over a Unix seqpacket socket
// at <dev>/uioN.irq when one exists, with the same protocol (write a
// 4-byte 1 to unmask, read 4 bytes per interrupt); without it the device
// has no interrupt and callers poll its STATUS register.
//
// Registers are read and written as volatile 32-bit little-endian
// accesses. Thread-compatible: one user at a time (Zcu102Device
// serializes).
#ifndef ESB_FPGA_AGENT_UIO_H_
#define ESB_FPGA_AGENT_UIO_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/accel/registers.h"

namespace esb::agent {

struct UioOptions {
  std::string sysfs_root = "/sys";
  std::string dev_root = "/dev";
  std::string name = accel::kUioName;  // <sysfs>/class/uio/uioN/name.
};

class Uio {
 public:
  // Finds the device named options.name, checks that map0 holds the
  // registers (at least 4 KiB) and map1 is not empty, and maps both.
  // NOT_FOUND "no UIO device named 'esb-accel' under /sys/class/uio
  // (found: uio0 'axi-gpio')" when there is none; the file system's status
  // naming the path when a map's files or the device cannot be read or
  // mapped.
  static absl::StatusOr<std::unique_ptr<Uio>> Open(const UioOptions& options);
  ~Uio();

  Uio(const Uio&) = delete;
  Uio& operator=(const Uio&) = delete;

  // Register at byte `offset` of map0 (4-byte aligned, inside map0).
  uint32_t Read32(uint32_t offset) const;
  void Write32(uint32_t offset, uint32_t value);

  // map1, the buffer region.
  absl::Span<uint8_t> buffer() { return {map1_, map1_size_}; }
  uint64_t buffer_physical_address() const { return map1_addr_; }
  uint64_t registers_size() const { return map0_size_; }

  const std::string& device() const { return device_; }  // "uio0".
  const std::string& device_path() const { return device_path_; }

  bool has_interrupt() const { return irq_fd_ >= 0; }
  // Unmasks the interrupt (writes a 4-byte 1). FAILED_PRECONDITION
  // without an interrupt.
  absl::Status UnmaskInterrupt();
  // Waits at most `timeout` for an interrupt: true when one came (its
  // count is interrupt_count()), false at the timeout. The wait is
  // bounded even when the device never interrupts.
  absl::StatusOr<bool> WaitForInterrupt(absl::Duration timeout);
  uint32_t interrupt_count() const { return interrupt_count_; }

 private:
  Uio() = default;

  std::string device_;
  std::string device_path_;
  int fd_ = -1;
  int irq_fd_ = -1;  // fd_ itself on a character device.
  volatile uint32_t* map0_ = nullptr;
  uint64_t map0_size_ = 0;
  uint64_t map0_mapped_ = 0;
  uint8_t* map1_ = nullptr;
  uint64_t map1_size_ = 0;
  uint64_t map1_addr_ = 0;
  uint32_t interrupt_count_ = 0;
};

// Orders the caller's earlier memory accesses (the buffer, registers)
// before its later ones as the device sees them: a DSB on AArch64, a full
// fence elsewhere.
void IoBarrier();

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_UIO_H_
