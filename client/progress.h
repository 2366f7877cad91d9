// Progress of long client work, on a terminal as one redrawn bar, elsewhere
// (pipes, CI logs) as a plain line every 10 % or so.
//
// Thread-compatible: one thread reports.
#ifndef ESB_CLIENT_PROGRESS_H_
#define ESB_CLIENT_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace esb::client {

class Progress {
 public:
  // `label` starts every line; `unit` names what is counted ("images").
  // Writes to `out` (stderr by default); a bar only when `out` is a
  // terminal; nothing at all when `quiet`.
  Progress(std::string label, int64_t total, std::string unit,
           bool quiet = false, FILE* out = stderr);

  // Sets the count done so far and redraws when due.
  void Update(int64_t done);
  // Final line with the total time and rate.
  void Finish();

 private:
  void Draw(bool final);

  std::string label_;
  int64_t total_;
  std::string unit_;
  bool quiet_;
  FILE* out_;
  bool tty_;
  int64_t done_ = 0;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace esb::client

#endif  // ESB_CLIENT_PROGRESS_H_
