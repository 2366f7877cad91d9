// The accelerator's register interface (DESIGN.md section 7.1, normative):
// one contract for the real board, the device emulator of the tests and the
// hardware design. The agent's driver code never knows which one it talks
// to.
//
// The accelerator is a UIO device named "esb-accel". map0 (4 KiB) holds the
// 32-bit little-endian registers below; map1 is its buffer region, which
// holds the layer program (program.h), the packed weights and the
// activation buffers.
#ifndef ESB_CORE_ACCEL_REGISTERS_H_
#define ESB_CORE_ACCEL_REGISTERS_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace esb::accel {

inline constexpr char kUioName[] = "esb-accel";
inline constexpr uint32_t kRegisterBytes = 4096;  // map0.

// Register offsets in map0.
inline constexpr uint32_t kRegId = 0x00;        // kIdValue.
inline constexpr uint32_t kRegVersion = 0x04;   // major << 16 | minor.
inline constexpr uint32_t kRegCaps = 0x08;      // See Caps below.
inline constexpr uint32_t kRegClockKhz = 0x0C;  // PE array clock.
inline constexpr uint32_t kRegCtrl = 0x10;
inline constexpr uint32_t kRegStatus = 0x14;
inline constexpr uint32_t kRegProgramLo = 0x18;  // Program offset in map1.
inline constexpr uint32_t kRegProgramHi = 0x1C;
inline constexpr uint32_t kRegCyclesLo = 0x20;  // Cycles of the last run.
inline constexpr uint32_t kRegCyclesHi = 0x24;
inline constexpr uint32_t kRegLayersDone = 0x28;

inline constexpr uint32_t kIdValue = 0x45534231;  // "ESB1".
inline constexpr uint32_t kVersionMajor = 1;
inline constexpr uint32_t kVersionMinor = 0;

// CTRL bits. Start and reset are self-clearing: the device clears them when
// it acts on them, so the host writes them and never clears them.
inline constexpr uint32_t kCtrlStart = 1u << 0;
inline constexpr uint32_t kCtrlReset = 1u << 1;
inline constexpr uint32_t kCtrlInterruptEnable = 1u << 2;

// STATUS bits; done and error are cleared by writing 1 to them. Bits not
// named here are reserved: hosts ignore them when reading and write 0.
inline constexpr uint32_t kStatusBusy = 1u << 0;
inline constexpr uint32_t kStatusDone = 1u << 1;
inline constexpr uint32_t kStatusError = 1u << 2;
inline constexpr int kStatusErrorShift = 8;  // Error code in bits 8-15.
inline constexpr uint32_t kStatusErrorMask = 0xFFu << kStatusErrorShift;

// CAPS fields.
inline constexpr uint32_t CapsValue(int rows, int cols, int max_sb) {
  return (static_cast<uint32_t>(rows) & 0xFFu) |
         ((static_cast<uint32_t>(cols) & 0xFFu) << 8) |
         ((static_cast<uint32_t>(max_sb) & 0xFu) << 16);
}
inline constexpr int CapsRows(uint32_t caps) { return caps & 0xFFu; }
inline constexpr int CapsCols(uint32_t caps) { return (caps >> 8) & 0xFFu; }
inline constexpr int CapsMaxSb(uint32_t caps) { return (caps >> 16) & 0xFu; }

// The error codes a run ends with (STATUS bits 8-15 with the error bit).
enum class DeviceError : uint8_t {
  kNone = 0,
  kBadMagic = 1,           // The program header's magic is wrong.
  kBadVersion = 2,         // A program version the device does not know.
  kBadProgramOffset = 3,   // PROGRAM points outside map1 or is misaligned.
  kBadDescriptor = 4,      // A descriptor field is out of range.
  kOutOfBounds = 5,        // An offset or size reaches outside map1.
  kUnsupportedOp = 6,      // An op the array does not run.
  kUnsupportedFormat = 7,  // A format beyond CAPS (sb, bits).
  kBadCode = 8,            // A packed code that is not a level.
  kBusy = 9,               // START while a run is in progress.
};

// "bad descriptor", for messages; "error code N" for unknown codes.
absl::string_view DeviceErrorName(uint8_t code);

}  // namespace esb::accel

#endif  // ESB_CORE_ACCEL_REGISTERS_H_
