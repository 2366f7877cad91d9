#include "fpga_agent/hwmon.h"

#include <string>
#include <vector>

#include "core/env/env.h"
#include "fpga_agent/emulator.h"
#include "fpga_agent/sysfs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class HwmonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> root = FreshEmulatorRoot(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
  }
  void Put(const std::string& rel, const std::string& text) {
    const std::string path = JoinPath(root_, "sys/class/hwmon/" + rel);
    ASSERT_TRUE(Env::Default()->CreateDirs(DirName(path)).ok());
    ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, text).ok());
  }
  std::string sysfs() const { return JoinPath(root_, "sys"); }

  std::string root_;
};

TEST_F(HwmonTest, RailsFromLabelsPowerLabelsOrNames) {
  Put("hwmon0/name", "ina226\n");
  Put("hwmon0/label", "VCCINT\n");
  Put("hwmon0/power1_input", "2500000\n");
  Put("hwmon1/name", "ams\n");  // Not a power monitor.
  Put("hwmon1/power1_input", "9000000\n");
  Put("hwmon2/name", "ina226_u79\n");
  Put("hwmon2/power1_label", "VCC1V8\n");
  Put("hwmon2/power1_input", "750000\n");
  Put("hwmon10/name", "ina226\n");
  Put("hwmon10/power1_input", "125\n");
  const Hwmon hwmon(sysfs());
  EXPECT_TRUE(hwmon.HasPowerRails());
  absl::StatusOr<PowerReading> reading = hwmon.ReadPower();
  ASSERT_TRUE(reading.ok()) << reading.status();
  ASSERT_EQ(reading->rails.size(), 3u);
  EXPECT_EQ(reading->rails[0].rail, "VCCINT");
  EXPECT_DOUBLE_EQ(reading->rails[0].watts, 2.5);
  EXPECT_EQ(reading->rails[1].rail, "VCC1V8");
  EXPECT_DOUBLE_EQ(reading->rails[1].watts, 0.75);
  EXPECT_EQ(reading->rails[2].rail, "ina226.10");  // hwmon10 after hwmon2.
  EXPECT_DOUBLE_EQ(reading->rails[2].watts, 125e-6);
  EXPECT_DOUBLE_EQ(reading->total_watts(), 2.5 + 0.75 + 125e-6);
  EXPECT_THAT(reading->missing, IsEmpty());
}

TEST_F(HwmonTest, ADeviceGoneBetweenListingAndReadingIsSkippedAndReported) {
  Put("hwmon0/name", "ina226\n");
  Put("hwmon0/label", "VCCINT\n");
  Put("hwmon0/power1_input", "1000000\n");
  // Listed, but its files are gone: a driver that unbound meanwhile.
  Put("hwmon1/name", "ina226\n");
  Put("hwmon1/label", "VCCBRAM\n");
  const Hwmon hwmon(sysfs());
  absl::StatusOr<PowerReading> reading = hwmon.ReadPower();
  ASSERT_TRUE(reading.ok()) << reading.status();
  ASSERT_EQ(reading->rails.size(), 1u);
  EXPECT_EQ(reading->rails[0].rail, "VCCINT");
  ASSERT_EQ(reading->missing.size(), 1u);
  EXPECT_THAT(reading->missing[0], HasSubstr("hwmon1 (VCCBRAM)"));
  EXPECT_THAT(reading->missing[0], HasSubstr("power1_input"));
}

TEST_F(HwmonTest, NoHwmonClassIsAnEmptyReading) {
  const Hwmon hwmon(sysfs());
  EXPECT_FALSE(hwmon.HasPowerRails());
  absl::StatusOr<PowerReading> reading = hwmon.ReadPower();
  ASSERT_TRUE(reading.ok());
  EXPECT_THAT(reading->rails, IsEmpty());
  EXPECT_FALSE(hwmon.ReadTemperatureC().has_value());
}

TEST_F(HwmonTest, TemperaturePrefersAmsOverOtherSensors) {
  Put("hwmon0/name", "cpu_thermal\n");
  Put("hwmon0/temp1_input", "30000\n");
  Put("hwmon1/name", "ams\n");
  Put("hwmon1/temp1_input", "47250\n");
  EXPECT_DOUBLE_EQ(*Hwmon(sysfs()).ReadTemperatureC(), 47.25);
}

TEST_F(HwmonTest, TemperatureFromAnySensorWithoutAms) {
  Put("hwmon0/name", "ina226\n");
  Put("hwmon0/power1_input", "1\n");
  Put("hwmon1/name", "cpu_thermal\n");
  Put("hwmon1/temp1_input", "-5500\n");
  EXPECT_DOUBLE_EQ(*Hwmon(sysfs()).ReadTemperatureC(), -5.5);
}

PowerSample At(double seconds, double watts) {
  return PowerSample{absl::UnixEpoch() + absl::Seconds(seconds), watts};
}
absl::Time T(double seconds) {
  return absl::UnixEpoch() + absl::Seconds(seconds);
}

TEST(IntegrateEnergyTest, TrapezoidsCutAtTheRunsEnds) {
  // A ramp from 1 W at t=0 to 3 W at t=2, then flat.
  const std::vector<PowerSample> samples = {At(0, 1), At(2, 3), At(4, 3)};
  EXPECT_DOUBLE_EQ(IntegrateEnergy(samples, T(0), T(4)), 4.0 + 6.0);
  // [1, 3]: the ramp from 2 W to 3 W over 1 s, then 3 W for 1 s.
  EXPECT_DOUBLE_EQ(IntegrateEnergy(samples, T(1), T(3)), 2.5 + 3.0);
  // Beyond the samples the power is held.
  EXPECT_DOUBLE_EQ(IntegrateEnergy(samples, T(4), T(6)), 6.0);
  EXPECT_DOUBLE_EQ(IntegrateEnergy({At(0, 5)}, T(1), T(3)), 10.0);
  EXPECT_EQ(IntegrateEnergy(samples, T(3), T(3)), 0.0);
  EXPECT_EQ(IntegrateEnergy({}, T(0), T(1)), 0.0);
}

TEST(PowerSamplerTest, IntegratesTheSamplesOverTheRun) {
  // A clock that advances 1 ms per reading and a power that rises 1 W per
  // reading: the samples are (t, P) = (k ms, k W).
  absl::Mutex mu;
  int calls = 0;
  double now_ms = 0;
  PowerSampler::Options options;
  options.period = absl::Hours(1);  // Only the two ends.
  options.clock = [&] {
    absl::MutexLock lock(&mu);
    return absl::UnixEpoch() + absl::Milliseconds(now_ms);
  };
  PowerSampler sampler(
      [&]() -> absl::StatusOr<PowerReading> {
        absl::MutexLock lock(&mu);
        PowerReading r;
        r.rails.push_back(RailPower{"VCCINT", static_cast<double>(calls++)});
        now_ms += 1;
        return r;
      },
      options);
  std::unique_ptr<PowerSampler::Measurement> m = sampler.Start();
  // Start: sample (1 ms, 0 W); t0 = 1 ms. Finish: t1 = 1 ms, then sample
  // (2 ms, 1 W). A zero-length run has no energy.
  EnergyMeasurement e = m->Finish();
  EXPECT_EQ(e.samples, 2);
  EXPECT_EQ(e.interval, absl::ZeroDuration());
  EXPECT_EQ(e.joules, 0.0);

  {
    absl::MutexLock lock(&mu);
    calls = 0;
    now_ms = 0;
  }
  m = sampler.Start();  // Sample (1 ms, 0 W), t0 = 1 ms.
  {
    absl::MutexLock lock(&mu);
    now_ms = 11;  // The run takes 10 ms.
  }
  e = m->Finish();  // t1 = 11 ms, sample (12 ms, 1 W).
  EXPECT_EQ(e.interval, absl::Milliseconds(10));
  // P(t) = (t - 1 ms) / 11 ms W on [1, 12] ms; its integral over [1, 11] ms
  // is 10 ms * (0 + 10/11) / 2 W.
  EXPECT_NEAR(e.joules, 0.010 * (10.0 / 11.0) / 2.0, 1e-12);
  EXPECT_THAT(e.missing, IsEmpty());
}

TEST(PowerSamplerTest, ReportsRailsThatVanishDuringTheRun) {
  absl::Mutex mu;
  int calls = 0;
  PowerSampler::Options options;
  options.period = absl::Hours(1);
  PowerSampler sampler(
      [&]() -> absl::StatusOr<PowerReading> {
        absl::MutexLock lock(&mu);
        PowerReading r;
        r.rails.push_back(RailPower{"VCCINT", 2.0});
        if (calls++ == 0) r.rails.push_back(RailPower{"VCCBRAM", 1.0});
        return r;
      },
      options);
  std::unique_ptr<PowerSampler::Measurement> m = sampler.Start();
  const EnergyMeasurement e = m->Finish();
  EXPECT_THAT(e.missing, ElementsAre("rail VCCBRAM vanished"));
  EXPECT_EQ(e.samples, 2);
}

TEST(PowerSamplerTest, SamplesDuringLongRuns) {
  PowerSampler::Options options;
  options.period = absl::Milliseconds(2);
  PowerSampler sampler(
      []() -> absl::StatusOr<PowerReading> {
        PowerReading r;
        r.rails.push_back(RailPower{"VCCINT", 4.0});
        return r;
      },
      options);
  std::unique_ptr<PowerSampler::Measurement> m = sampler.Start();
  absl::SleepFor(absl::Milliseconds(40));
  const EnergyMeasurement e = m->Finish();
  EXPECT_GT(e.samples, 4);
  EXPECT_GE(e.interval, absl::Milliseconds(40));
  EXPECT_NEAR(e.joules, 4.0 * absl::ToDoubleSeconds(e.interval), 1e-12);
}

}  // namespace
}  // namespace esb::agent
