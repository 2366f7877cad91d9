// Test support for end-to-end tests: real processes (esb-server,
// esb-worker, esbctl) started on loopback, their output in a log file, and
// every one of them stopped by its pid when the test ends, passing or not.
#ifndef ESB_TESTS_PROCESS_H_
#define ESB_TESTS_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace esb::testing {

class Process {
 public:
  // Starts argv[0] with `argv` in its own process group, stdout and stderr
  // appended to `log_path`.
  static absl::StatusOr<std::unique_ptr<Process>> Start(
      const std::vector<std::string>& argv, const std::string& log_path);
  // SIGKILLs the process group if it still runs, and reaps the process.
  ~Process();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;

  // The first line of the log that contains `text`, waiting up to
  // `timeout`; DEADLINE_EXCEEDED (with the log) if none comes, FAILED_
  // PRECONDITION if the process exits first.
  absl::StatusOr<std::string> WaitForLine(const std::string& text,
                                          absl::Duration timeout);

  // Sends `signal` to the process (SIGKILL: to its whole group, so the
  // job processes a worker started die with it, as on a lost machine).
  void Signal(int signal);
  // Waits up to `timeout` for the exit; the wait status, or
  // DEADLINE_EXCEEDED.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  bool running();

 private:
  Process(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}

  pid_t pid_;
  std::string log_path_;
  bool reaped_ = false;
  int status_ = 0;
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or at the timeout.
  std::string out;     // stdout and stderr together.
};

// Runs a command to its end (killed after `timeout`).
RunResult RunCommand(const std::vector<std::string>& argv,
                     absl::Duration timeout = absl::Seconds(120));

// A TCP port on 127.0.0.1 free at the time of the call.
int FreePort();

// A fresh empty directory under the test temp dir, named after `name`, the
// running test and the process, so tests running at once never share one.
std::string FreshDir(const std::string& name);

}  // namespace esb::testing

#endif  // ESB_TESTS_PROCESS_H_
