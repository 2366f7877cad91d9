// The board's power and temperature monitors through hwmon
// (<sysfs>/class/hwmon/hwmonN/...).
//
// Power rails: every device whose `name` starts with "ina226" (the
// ZCU102's INA226 current/power monitors, one per rail). Its rail is the
// `label` file, else `power1_label`, else "<name>.<N>" (hwmonN); its power
// is `power1_input` in microwatts. A device that vanishes between the
// listing and the reading (its files gone: a driver unbound, a hot
// unplug) is left out of the reading and named in PowerReading::missing;
// it never fails the whole read.
//
// Temperature: `temp1_input` (millidegrees Celsius) of the device named
// "ams" or starting with "ams" (the Zynq UltraScale+ AMS sysmon) when
// there is one, else of the first device that has temp1_input.
//
// Energy of a run: PowerSampler reads the total power of the rails just
// before the run's start t0, every `period` during it and just after its
// end t1; P(t) is the piecewise-linear curve through the samples (held
// constant beyond the first and the last), and
//
//   E = integral of P(t) dt from t0 to t1,
//
// which is the trapezoid rule over the samples, with the end pieces cut
// at t0 and t1: a constant power P over a run of T seconds gives P * T.
//
// Hwmon and PowerSampler are thread-safe; a Measurement belongs to one
// thread.
#ifndef ESB_FPGA_AGENT_HWMON_H_
#define ESB_FPGA_AGENT_HWMON_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "fpga_agent/backend.h"

namespace esb::agent {

struct PowerReading {
  std::vector<RailPower> rails;      // In hwmon index order.
  std::vector<std::string> missing;  // "hwmon3 (VCCINT): power1_input: ..."
  double total_watts() const;
};

class Hwmon {
 public:
  explicit Hwmon(const std::string& sysfs_root);

  // The INA226 rails. An empty reading when there are none (or no hwmon
  // class at all); the file system's status only when the class directory
  // exists but cannot be listed.
  absl::StatusOr<PowerReading> ReadPower() const;
  // Degrees Celsius, or nullopt when no device has a temperature.
  std::optional<double> ReadTemperatureC() const;
  // Whether any INA226 device is present (a cheap listing).
  bool HasPowerRails() const;

 private:
  const std::string class_dir_;  // <sysfs>/class/hwmon.
};

struct PowerSample {
  absl::Time time;
  double watts = 0.0;  // Total over the rails read.
};

// The integral (joules) over [from, to] of the piecewise-linear curve
// through `samples` (in time order; held constant beyond the first and
// the last sample). 0 without samples or when to <= from.
double IntegrateEnergy(const std::vector<PowerSample>& samples, absl::Time from,
                       absl::Time to);

struct EnergyMeasurement {
  double joules = 0.0;
  absl::Duration interval;  // t1 - t0: from Start's return to Finish's call.
  int samples = 0;
  // What went missing during the run, each once: rails read in the first
  // sample and absent from a later one ("rail VCCINT vanished"), devices
  // the readings reported missing, and reads that failed (skipped).
  std::vector<std::string> missing;
};

class PowerSampler {
 public:
  struct Options {
    absl::Duration period = absl::Milliseconds(5);
    std::function<absl::Time()> clock = [] { return absl::Now(); };
  };
  using Source = std::function<absl::StatusOr<PowerReading>()>;

  // Samples `source` (Hwmon::ReadPower in the backend).
  PowerSampler(Source source, Options options);
  explicit PowerSampler(Source source)
      : PowerSampler(std::move(source), Options{}) {}

  // One run's sampling: the first sample is taken in Start, which then
  // reads t0 from the clock; Finish reads t1 first, then takes the last
  // sample. Others are taken every `period` in between on a thread of
  // their own.
  class Measurement {
   public:
    ~Measurement();
    // Stops the sampling, takes the last sample and integrates.
    EnergyMeasurement Finish();

   private:
    friend class PowerSampler;
    explicit Measurement(const PowerSampler* sampler);
    void Sample();
    void Loop();

    const PowerSampler* const sampler_;
    absl::Time from_, to_;
    absl::Notification stop_;
    absl::Mutex mu_;
    std::vector<PowerSample> samples_ ABSL_GUARDED_BY(mu_);
    std::vector<std::string> first_rails_ ABSL_GUARDED_BY(mu_);
    std::vector<std::string> missing_ ABSL_GUARDED_BY(mu_);
    bool finished_ = false;
    std::thread thread_;
  };
  std::unique_ptr<Measurement> Start() const;

 private:
  const Source source_;
  const Options options_;
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_HWMON_H_
