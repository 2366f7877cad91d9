// A Device (device.h) that runs the accelerator model in process over a
// buffer it owns: the accelerator without registers, for tests and
// benchmarks of the model itself.
#ifndef ESB_CORE_ACCEL_MODEL_DEVICE_H_
#define ESB_CORE_ACCEL_MODEL_DEVICE_H_

#include <cstdint>
#include <vector>

#include "core/accel/device.h"

namespace esb::accel {

class ModelDevice : public Device {
 public:
  ModelDevice(const ArrayConfig& config, int64_t buffer_bytes)
      : config_(config), buffer_(static_cast<size_t>(buffer_bytes)) {}

  ArrayConfig config() const override { return config_; }
  absl::Span<uint8_t> buffer() override { return absl::MakeSpan(buffer_); }
  absl::StatusOr<DeviceRun> Run(uint64_t program_offset,
                                absl::Duration timeout) override;

 private:
  const ArrayConfig config_;
  std::vector<uint8_t> buffer_;
};

}  // namespace esb::accel

#endif  // ESB_CORE_ACCEL_MODEL_DEVICE_H_
