// The `sim` backend: no board. A model runs on the CPU through
// runtime::EsbExecutor, whose outputs are bit-identical to the
// accelerator's (core/accel's runner tests hold them equal); its compute
// time is measured on the host, and its cycles, operations and energy come
// from the accelerator's cost model (accel::EstimateCost and
// accel::EnergyJoules at the configured array), labelled "model", never as
// a board measurement. Power in Status() is modelled too: the array's
// static power plus the dynamic energy of the runs of the last
// kPowerWindow, over that window.
//
// LoadBitstream checks that the file is in the bitstream directory and
// records its name; nothing is programmed.
//
// Thread-safe.
#ifndef ESB_FPGA_AGENT_SIM_BACKEND_H_
#define ESB_FPGA_AGENT_SIM_BACKEND_H_

#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/accel/array.h"
#include "core/env/env.h"
#include "core/runtime/executor.h"
#include "fpga_agent/backend.h"

namespace esb::agent {

struct SimBackendOptions {
  // Where LoadBitstream looks for files; "" refuses every load.
  std::string bitstream_dir;
  accel::ArrayConfig array;  // The modelled accelerator.
  accel::PowerModel power;
  int threads = 0;               // EsbExecutorOptions::threads of each model.
  runtime::MemoryBudget budget;  // EsbExecutorOptions::budget of each.
};

class SimBackend final : public Backend {
 public:
  static constexpr absl::Duration kPowerWindow = absl::Seconds(10);

  // `env` is not owned and must outlive the backend; the backend must
  // outlive the models it prepares.
  SimBackend(Env* env, SimBackendOptions options)
      : env_(env), options_(std::move(options)) {}

  absl::string_view name() const override { return "sim"; }
  absl::Status LoadBitstream(const std::string& name) override;
  // INVALID_ARGUMENT when the package does not compile for the modelled
  // array (EstimateCost's message) or the executor refuses it.
  absl::StatusOr<std::unique_ptr<LoadedModel>> Prepare(
      const pipeline::PackagedModel& model, int max_batch) override;
  BoardState Status() override;

  // Called by the models after each run: the run's modelled dynamic energy.
  void RecordRun(double dynamic_joules);

 private:
  Env* const env_;
  const SimBackendOptions options_;
  absl::Mutex mu_;
  std::string bitstream_ ABSL_GUARDED_BY(mu_);
  // (end of run, dynamic joules) of the runs within kPowerWindow.
  std::deque<std::pair<absl::Time, double>> runs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_SIM_BACKEND_H_
