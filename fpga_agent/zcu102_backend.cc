#include "fpga_agent/zcu102_backend.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "core/accel/array.h"
#include "core/accel/registers.h"
#include "core/accel/runner.h"
#include "fpga_agent/fpga_manager.h"
#include "fpga_agent/hwmon.h"
#include "fpga_agent/sysfs.h"
#include "fpga_agent/uio.h"
#include "fpga_agent/zcu102_device.h"

namespace esb::agent {
namespace {

// What the backend and its models share: the board. Models hold it, so
// they may outlive the backend.
struct Board {
  Board(const Zcu102Options& o, std::unique_ptr<FpgaManager> f)
      : options(o),
        fpga(std::move(f)),
        hwmon(o.sysfs_root),
        sampler([this] { return hwmon.ReadPower(); },
                PowerSampler::Options{o.power_period}) {}

  const Zcu102Options options;
  const std::unique_ptr<FpgaManager> fpga;
  const Hwmon hwmon;
  const PowerSampler sampler;

  // Held by every use of the device: runs, image swaps, reloads.
  absl::Mutex device_mu;
  std::unique_ptr<Zcu102Device> device ABSL_GUARDED_BY(device_mu);
  // Counts the devices opened; a model's runner is for one of them.
  uint64_t generation ABSL_GUARDED_BY(device_mu) = 0;
  // The model whose image is in the buffer region (nullptr: none).
  const void* image_owner ABSL_GUARDED_BY(device_mu) = nullptr;

  // What Status() reports; never held across device or file work.
  absl::Mutex state_mu;
  std::string bitstream ABSL_GUARDED_BY(state_mu);
  std::string accelerator ABSL_GUARDED_BY(state_mu);
  std::string no_device ABSL_GUARDED_BY(state_mu);    // Why there is none.
  std::string run_failure ABSL_GUARDED_BY(state_mu);  // A wedged device.

  // Opens the accelerator anew, recording why when there is none.
  absl::Status Discover() ABSL_EXCLUSIVE_LOCKS_REQUIRED(device_mu) {
    device.reset();
    ++generation;
    image_owner = nullptr;
    absl::StatusOr<std::unique_ptr<Uio>> uio = Uio::Open(
        UioOptions{options.sysfs_root, options.dev_root, accel::kUioName});
    absl::StatusOr<std::unique_ptr<Zcu102Device>> opened =
        uio.ok() ? Zcu102Device::Open(std::move(*uio),
                                      Zcu102DeviceOptions{options.poll})
                 : uio.status();
    absl::MutexLock lock(&state_mu);
    run_failure.clear();
    if (!opened.ok()) {
      no_device = std::string{opened.status().message()};
      accelerator.clear();
      return opened.status();
    }
    device = std::move(*opened);
    no_device.clear();
    accelerator = absl::StrCat(
        accel::Describe(device->config()), " (", device->uio().device(),
        device->uses_interrupt() ? ", interrupt" : ", polled", ")");
    return absl::OkStatus();
  }

  void Forget() ABSL_EXCLUSIVE_LOCKS_REQUIRED(device_mu) {
    device.reset();
    ++generation;
    image_owner = nullptr;
    absl::MutexLock lock(&state_mu);
    accelerator.clear();
    no_device = "the accelerator is being reloaded";
  }
};

absl::Status NoDevice(Board& board) {
  absl::MutexLock lock(&board.state_mu);
  return absl::FailedPreconditionError(absl::StrCat(
      "no accelerator (", board.no_device, "); load a bitstream that has one"));
}

class Zcu102Model : public LoadedModel {
 public:
  Zcu102Model(std::shared_ptr<Board> board, pipeline::PackagedModel model,
              int max_batch)
      : board_(std::move(board)),
        model_(std::move(model)),
        max_batch_(max_batch) {}

  ~Zcu102Model() override {
    absl::MutexLock lock(&board_->device_mu);
    runner_.reset();
    if (board_->image_owner == this) board_->image_owner = nullptr;
  }

  // Puts this model's image in the buffer region when it is not there.
  absl::Status Install() ABSL_EXCLUSIVE_LOCKS_REQUIRED(board_->device_mu) {
    if (board_->device == nullptr) return NoDevice(*board_);
    if (runner_ != nullptr && board_->image_owner == this &&
        generation_ == board_->generation) {
      return absl::OkStatus();
    }
    runner_.reset();
    accel::RunnerOptions options;
    options.max_batch = max_batch_;
    options.device_timeout = board_->options.device_timeout;
    options.host_threads = board_->options.host_threads;
    options.host_budget = board_->options.host_budget;
    absl::StatusOr<std::unique_ptr<accel::ModelRunner>> runner =
        accel::ModelRunner::Create(model_, board_->device.get(), options);
    if (!runner.ok()) {
      board_->image_owner = nullptr;  // The old image may be overwritten.
      return runner.status();
    }
    runner_ = std::move(*runner);
    board_->image_owner = this;
    generation_ = board_->generation;
    absl::MutexLock lock(&description_mu_);
    description_ = runner_->Description();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<graph::Tensor>> Run(const graph::Tensor& input,
                                                 BatchStats* stats) override {
    absl::MutexLock lock(&board_->device_mu);
    if (absl::Status s = Install(); !s.ok()) return s;
    Zcu102Device& device = *board_->device;

    const bool measure = board_->hwmon.HasPowerRails();
    std::unique_ptr<PowerSampler::Measurement> measurement;
    if (measure) measurement = board_->sampler.Start();
    const absl::Time start = absl::Now();
    accel::RunStats run;
    absl::StatusOr<std::vector<graph::Tensor>> outputs =
        runner_->Run({input}, &run);
    const absl::Duration wall = absl::Now() - start;
    EnergyMeasurement energy;
    if (measurement != nullptr) energy = measurement->Finish();

    {
      absl::MutexLock state(&board_->state_mu);
      board_->run_failure = device.wedged() ? device.last_failure() : "";
    }
    if (!outputs.ok()) {
      // A failed device run may leave the buffer region half-written.
      board_->image_owner = nullptr;
      return outputs.status();
    }
    if (!energy.missing.empty()) {
      std::fprintf(stderr, "esb-agent zcu102: power during a batch: %s\n",
                   absl::StrJoin(energy.missing, "; ").c_str());
    }
    if (stats != nullptr) {
      *stats = BatchStats{};
      stats->cycles = run.device_cycles;
      stats->cycles_modelled = false;
      stats->operations = 2 * run.cost.macs;
      if (measure && energy.samples >= 2) {
        stats->compute_seconds = absl::ToDoubleSeconds(energy.interval);
        stats->energy_joules = energy.joules;
        stats->energy_source = "measured";
      } else {
        stats->compute_seconds = absl::ToDoubleSeconds(wall);
        stats->energy_joules = accel::EnergyJoules(run.cost, device.config());
        stats->energy_source = "model";
      }
    }
    return outputs;
  }

  int max_batch() const override { return max_batch_; }

  std::string Description() const override {
    absl::MutexLock lock(&description_mu_);
    return absl::StrCat("zcu102: ", description_);
  }

 private:
  const std::shared_ptr<Board> board_;
  const pipeline::PackagedModel model_;
  const int max_batch_;
  std::unique_ptr<accel::ModelRunner> runner_
      ABSL_GUARDED_BY(board_->device_mu);
  uint64_t generation_ ABSL_GUARDED_BY(board_->device_mu) = 0;
  mutable absl::Mutex description_mu_;  // Not held across runs.
  std::string description_ ABSL_GUARDED_BY(description_mu_);
};

class Zcu102Backend : public Backend {
 public:
  explicit Zcu102Backend(std::shared_ptr<Board> board)
      : board_(std::move(board)) {}

  absl::string_view name() const override { return "zcu102"; }

  absl::Status LoadBitstream(const std::string& name) override {
    if (!IsPlainFileName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", name, "' is not a bitstream file name"));
    }
    absl::MutexLock lock(&board_->device_mu);
    // The mapping goes before the design changes under it.
    board_->Forget();
    absl::Status loaded =
        board_->fpga->Load(JoinPath(board_->options.bitstream_dir, name));
    if (!loaded.ok()) {
      absl::MutexLock state(&board_->state_mu);
      board_->bitstream.clear();
      board_->no_device = std::string{loaded.message()};
      return loaded;
    }
    {
      absl::MutexLock state(&board_->state_mu);
      board_->bitstream = name;
    }
    if (absl::Status s = board_->Discover(); !s.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("bitstream '", name,
                       "' is loaded but holds no accelerator: ", s.message()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<LoadedModel>> Prepare(
      const pipeline::PackagedModel& model, int max_batch) override {
    if (max_batch < 1 || max_batch > 4096) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_batch ", max_batch, " is outside 1..4096"));
    }
    auto prepared = std::make_unique<Zcu102Model>(board_, model, max_batch);
    absl::MutexLock lock(&board_->device_mu);
    if (absl::Status s = prepared->Install(); !s.ok()) return s;
    return prepared;
  }

  BoardState Status() override {
    BoardState s;
    s.backend = "zcu102";
    absl::StatusOr<std::string> state = board_->fpga->State();
    s.bitstream_state =
        state.ok() ? *state
                   : absl::StrCat("unreadable: ", state.status().message());
    s.temperature_c = board_->hwmon.ReadTemperatureC();
    absl::StatusOr<PowerReading> power = board_->hwmon.ReadPower();
    if (power.ok()) {
      s.power = power->rails;
      s.power_measured = !s.power.empty();
    }
    std::vector<std::string> problems;
    {
      absl::MutexLock lock(&board_->state_mu);
      s.bitstream = board_->bitstream;
      s.accelerator = board_->accelerator;
      if (!board_->no_device.empty()) {
        problems.push_back(absl::StrCat("no accelerator: ", board_->no_device));
      }
      if (!board_->run_failure.empty()) {
        problems.push_back(absl::StrCat("the accelerator failed a run: ",
                                        board_->run_failure));
      }
    }
    if (!state.ok() || absl::EndsWith(*state, " error")) {
      problems.push_back(
          absl::StrCat("FPGA Manager state '", s.bitstream_state, "'"));
    }
    s.healthy = problems.empty();
    s.health_detail = absl::StrJoin(problems, "; ");
    return s;
  }

 private:
  const std::shared_ptr<Board> board_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeZcu102Backend(
    const Zcu102Options& options) {
  if (options.bitstream_dir.empty()) {
    return absl::InvalidArgumentError(
        "the zcu102 backend needs a bitstream directory");
  }
  FpgaManagerOptions fpga;
  fpga.sysfs_root = options.sysfs_root;
  fpga.firmware_dir = options.firmware_dir;
  fpga.load_timeout = options.load_timeout;
  absl::StatusOr<std::unique_ptr<FpgaManager>> manager =
      FpgaManager::Create(fpga);
  if (!manager.ok()) return manager.status();
  auto board = std::make_shared<Board>(options, std::move(*manager));
  {
    absl::MutexLock lock(&board->device_mu);
    // No accelerator before a bitstream brings one is fine: Status says so.
    (void)board->Discover();
  }
  return std::unique_ptr<Backend>(new Zcu102Backend(std::move(board)));
}

}  // namespace esb::agent
