// JobProcess: one quantization job run in a child process, so that a job
// that crashes, runs out of memory or must stop at once takes nothing of
// the worker with it.
//
// The worker writes the leased job to <job_dir>/job.pb (WriteJobSpec) and
// Spawn()s its own binary in its `--run-job` mode (RunJobChild), with the
// address space limited by RLIMIT_AS. The child:
//   - reads the inputs from the blob cache (<blob_dir>/<sha256>),
//   - runs esb::pipeline::RunJob with output folder <job_dir>/out,
//   - writes each progress event to the pipe on fd 3, as length-delimited
//     esb.v1.JobProgress messages (stage LOAD first, before RunJob),
//   - writes its final status to <job_dir>/status.pb (an esb.v1.JobError,
//     code 0 on success) and exits 0 on success, 1 on a job error,
//     kExitOutOfMemory when an allocation failed;
//   - has its stdout and stderr in <job_dir>/stderr.log,
//   - runs in its own process group (a terminal's Ctrl-C reaches only the
//     worker, which drains) and dies with the worker (PR_SET_PDEATHSIG).
//
// Thread-safety: a JobProcess is used by one thread.
#ifndef ESB_WORKER_JOB_PROCESS_H_
#define ESB_WORKER_JOB_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "esb/v1/service.pb.h"

namespace esb::worker {

// The child's exit code when an allocation failed (under the memory limit).
inline constexpr int kExitOutOfMemory = 3;

struct JobSpawnOptions {
  std::string binary;    // An esb-worker executable.
  std::string job_dir;   // Holds job.pb; receives out/, status.pb, stderr.log.
  std::string blob_dir;  // The blob cache folder.
  int threads = 0;       // CPU threads of the job; 0: every CPU.
  int64_t memory_limit = 0;  // RLIMIT_AS of the child in bytes; 0: none.
};

// How a job process ended.
struct JobExit {
  bool ok = false;          // Exited 0 with an OK status.
  esb::v1::JobError error;  // Why not, when !ok.
  std::string output_dir;   // <job_dir>/out: the artifacts, when ok.
};

// Writes `job` to <job_dir>/job.pb (creating job_dir).
absl::Status WriteJobSpec(const std::string& job_dir, const esb::v1::Job& job);

class JobProcess {
 public:
  // Starts the child. The error names the step that failed (pipe, fork).
  static absl::StatusOr<std::unique_ptr<JobProcess>> Spawn(
      const JobSpawnOptions& options);
  // Kills and reaps the child if it still runs.
  ~JobProcess();
  JobProcess(const JobProcess&) = delete;
  JobProcess& operator=(const JobProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits up to `timeout` for progress and appends the events that came.
  // False once the child has closed its end of the pipe (it has exited or
  // is about to): then call Wait().
  bool ReadProgress(absl::Duration timeout,
                    std::vector<esb::v1::JobProgress>* events);

  // The latest event read (stage UNSPECIFIED before the first).
  const esb::v1::JobProgress& last_progress() const { return last_; }

  // SIGKILLs the child (and its process group) at once.
  void Kill();

  // Reaps the child, blocking until it has exited, and says how it ended:
  // its status file after a normal exit; after a signal, a message naming
  // the signal and the last stage seen ("job process killed by SIGSEGV in
  // stage load") with the last line of its stderr.
  JobExit Wait();

 private:
  JobProcess(const JobSpawnOptions& options, pid_t pid, int progress_fd);

  const JobSpawnOptions options_;
  pid_t pid_;
  int progress_fd_;  // -1 once closed.
  bool reaped_ = false;
  std::string buffer_;  // Bytes read but not yet a whole message.
  esb::v1::JobProgress last_;
};

// "load", "calibrate"... for a stage; "start" for UNSPECIFIED.
std::string StageName(esb::v1::Stage stage);

struct JobChildOptions {
  std::string job_dir;
  std::string blob_dir;
  int threads = 0;
  int progress_fd = 3;
};

// The child's side (esb-worker --run-job): runs the job of
// <job_dir>/job.pb and returns the process exit code.
int RunJobChild(const JobChildOptions& options);

}  // namespace esb::worker

#endif  // ESB_WORKER_JOB_PROCESS_H_
