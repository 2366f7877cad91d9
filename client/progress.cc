#include "client/progress.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace esb::client {

Progress::Progress(std::string label, int64_t total, std::string unit,
                   bool quiet, FILE* out)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 1)),
      unit_(std::move(unit)),
      quiet_(quiet),
      out_(out),
      tty_(isatty(fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::Update(int64_t done) {
  done_ = std::min(done, total_);
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    Draw(false);
    return;
  }
  const int decile = static_cast<int>(10 * done_ / total_);
  if (decile != last_decile_ && decile < 10) {
    last_decile_ = decile;
    Draw(false);
  }
}

void Progress::Finish() {
  if (quiet_) return;
  Draw(true);
}

void Progress::Draw(bool final) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
          .count();
  // Too early for a meaningful rate: report none.
  const double rate = elapsed > 0.05 ? done_ / elapsed : 0.0;
  const double fraction = static_cast<double>(done_) / total_;
  std::string tail;
  if (final) {
    tail = absl::StrFormat("%d %s in %.1f s (%.0f %s/s)", done_, unit_, elapsed,
                           rate, unit_);
  } else {
    const double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
    tail = absl::StrFormat("%d/%d %s, %.0f %s/s, %.0f s left", done_, total_,
                           unit_, rate, unit_, eta);
  }
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>';
    bar.resize(kWidth, ' ');
    absl::FPrintF(out_, "\r%s [%s] %3.0f%% %s\033[K%s", label_, bar,
                  100 * fraction, tail, final ? "\n" : "");
  } else {
    absl::FPrintF(out_, "%s: %3.0f%% %s\n", label_, 100 * fraction, tail);
  }
  std::fflush(out_);
}

}  // namespace esb::client
