#include "core/accel/registers.h"

namespace esb::accel {

absl::string_view DeviceErrorName(uint8_t code) {
  switch (static_cast<DeviceError>(code)) {
    case DeviceError::kNone:
      return "no error";
    case DeviceError::kBadMagic:
      return "bad program magic";
    case DeviceError::kBadVersion:
      return "unknown program version";
    case DeviceError::kBadProgramOffset:
      return "program offset outside the buffer region or misaligned";
    case DeviceError::kBadDescriptor:
      return "bad layer descriptor";
    case DeviceError::kOutOfBounds:
      return "offset or size outside the buffer region";
    case DeviceError::kUnsupportedOp:
      return "layer op not supported by the array";
    case DeviceError::kUnsupportedFormat:
      return "weight format beyond the array's largest sb";
    case DeviceError::kBadCode:
      return "packed weight codes with nonzero padding bits";
    case DeviceError::kBusy:
      return "start while a run is in progress";
  }
  return "unknown error code";
}

}  // namespace esb::accel
