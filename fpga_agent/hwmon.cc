#include "fpga_agent/hwmon.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "fpga_agent/sysfs.h"

namespace esb::agent {

double PowerReading::total_watts() const {
  double total = 0.0;
  for (const RailPower& rail : rails) total += rail.watts;
  return total;
}

Hwmon::Hwmon(const std::string& sysfs_root)
    : class_dir_(JoinPath(sysfs_root, "class/hwmon")) {}

bool Hwmon::HasPowerRails() const {
  absl::StatusOr<std::vector<std::string>> devices =
      ListNumbered(class_dir_, "hwmon");
  if (!devices.ok()) return false;
  for (const std::string& device : *devices) {
    absl::StatusOr<std::string> name =
        ReadAttribute(JoinPath(class_dir_, device + "/name"));
    if (name.ok() && absl::StartsWith(*name, "ina226")) return true;
  }
  return false;
}

absl::StatusOr<PowerReading> Hwmon::ReadPower() const {
  PowerReading reading;
  absl::StatusOr<std::vector<std::string>> devices =
      ListNumbered(class_dir_, "hwmon");
  if (!devices.ok()) {
    if (absl::IsNotFound(devices.status())) return reading;
    return devices.status();
  }
  for (const std::string& device : *devices) {
    const std::string dir = JoinPath(class_dir_, device);
    absl::StatusOr<std::string> name = ReadAttribute(JoinPath(dir, "name"));
    if (!name.ok()) {
      if (absl::IsNotFound(name.status())) {
        reading.missing.push_back(
            absl::StrCat(device, ": vanished (", name.status().message(), ")"));
      }
      continue;
    }
    if (!absl::StartsWith(*name, "ina226")) continue;
    std::string rail;
    for (const char* file : {"label", "power1_label"}) {
      absl::StatusOr<std::string> label = ReadAttribute(JoinPath(dir, file));
      if (label.ok() && !label->empty()) {
        rail = *label;
        break;
      }
    }
    if (rail.empty()) {
      absl::string_view index = device;
      absl::ConsumePrefix(&index, "hwmon");
      rail = absl::StrCat(*name, ".", index);
    }
    absl::StatusOr<int64_t> microwatts =
        ReadIntAttribute(JoinPath(dir, "power1_input"));
    if (!microwatts.ok()) {
      reading.missing.push_back(absl::StrCat(
          device, " (", rail, "): ", microwatts.status().message()));
      continue;
    }
    reading.rails.push_back(
        RailPower{rail, static_cast<double>(*microwatts) * 1e-6});
  }
  return reading;
}

std::optional<double> Hwmon::ReadTemperatureC() const {
  absl::StatusOr<std::vector<std::string>> devices =
      ListNumbered(class_dir_, "hwmon");
  if (!devices.ok()) return std::nullopt;
  std::optional<double> first;
  for (const std::string& device : *devices) {
    const std::string dir = JoinPath(class_dir_, device);
    absl::StatusOr<int64_t> millidegrees =
        ReadIntAttribute(JoinPath(dir, "temp1_input"));
    if (!millidegrees.ok()) continue;
    const double celsius = static_cast<double>(*millidegrees) * 1e-3;
    absl::StatusOr<std::string> name = ReadAttribute(JoinPath(dir, "name"));
    if (name.ok() && absl::StartsWith(*name, "ams")) return celsius;
    if (!first.has_value()) first = celsius;
  }
  return first;
}

double IntegrateEnergy(const std::vector<PowerSample>& samples, absl::Time from,
                       absl::Time to) {
  if (samples.empty() || to <= from) return 0.0;
  // P at time t on the curve through the samples.
  auto power = [&samples](absl::Time t) {
    if (t <= samples.front().time) return samples.front().watts;
    if (t >= samples.back().time) return samples.back().watts;
    const auto next = std::upper_bound(
        samples.begin(), samples.end(), t,
        [](absl::Time a, const PowerSample& b) { return a < b.time; });
    const PowerSample& b = *next;
    const PowerSample& a = *(next - 1);
    const double span = absl::ToDoubleSeconds(b.time - a.time);
    if (span <= 0.0) return b.watts;
    const double w = absl::ToDoubleSeconds(t - a.time) / span;
    return a.watts + w * (b.watts - a.watts);
  };
  // The curve is linear between consecutive knots: the sample times inside
  // (from, to) and the two ends.
  std::vector<absl::Time> knots = {from};
  for (const PowerSample& sample : samples) {
    if (sample.time > from && sample.time < to) knots.push_back(sample.time);
  }
  knots.push_back(to);
  double joules = 0.0;
  for (size_t i = 1; i < knots.size(); ++i) {
    const double dt = absl::ToDoubleSeconds(knots[i] - knots[i - 1]);
    joules += 0.5 * (power(knots[i - 1]) + power(knots[i])) * dt;
  }
  return joules;
}

PowerSampler::PowerSampler(Source source, Options options)
    : source_(std::move(source)), options_(std::move(options)) {}

std::unique_ptr<PowerSampler::Measurement> PowerSampler::Start() const {
  std::unique_ptr<Measurement> m(new Measurement(this));
  m->Sample();
  m->from_ = options_.clock();
  m->thread_ = std::thread([raw = m.get()] { raw->Loop(); });
  return m;
}

PowerSampler::Measurement::Measurement(const PowerSampler* sampler)
    : sampler_(sampler) {}

PowerSampler::Measurement::~Measurement() {
  if (!finished_) Finish();
}

void PowerSampler::Measurement::Sample() {
  absl::StatusOr<PowerReading> reading = sampler_->source_();
  const absl::Time time = sampler_->options_.clock();
  absl::MutexLock lock(&mu_);
  auto note = [this](std::string what) {
    if (std::find(missing_.begin(), missing_.end(), what) == missing_.end()) {
      missing_.push_back(std::move(what));
    }
  };
  if (!reading.ok()) {
    note(absl::StrCat("a power read failed: ", reading.status().message()));
    return;
  }
  for (std::string& what : reading->missing) note(std::move(what));
  std::vector<std::string> rails;
  for (const RailPower& rail : reading->rails) rails.push_back(rail.rail);
  if (samples_.empty()) {
    first_rails_ = rails;
  } else {
    for (const std::string& rail : first_rails_) {
      if (std::find(rails.begin(), rails.end(), rail) == rails.end()) {
        note(absl::StrCat("rail ", rail, " vanished"));
      }
    }
  }
  samples_.push_back(PowerSample{time, reading->total_watts()});
}

void PowerSampler::Measurement::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(sampler_->options_.period)) {
    Sample();
  }
}

EnergyMeasurement PowerSampler::Measurement::Finish() {
  if (!finished_) {
    finished_ = true;
    to_ = sampler_->options_.clock();
    stop_.Notify();
    thread_.join();
    Sample();
  }
  absl::MutexLock lock(&mu_);
  EnergyMeasurement result;
  result.joules = IntegrateEnergy(samples_, from_, to_);
  result.samples = static_cast<int>(samples_.size());
  result.interval = to_ - from_;
  result.missing = missing_;
  return result;
}

}  // namespace esb::agent
