#include "client/levels.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace esb::client {

esb::v1::LevelsReport BuildLevelsReport(const Format& format) {
  esb::v1::LevelsReport report;
  report.set_bits(format.bits());
  report.set_sb(format.sb());
  report.set_signed_(format.is_signed());
  report.set_mantissa_bits(format.mantissa_bits());
  report.set_exponent_bits(format.exponent_bits());
  for (float level : format.Levels()) {
    report.add_levels(level);
    report.add_integers(format.ToInteger(level));
    // Levels() returns only grid values, so Encode cannot fail here.
    report.add_codes(format.Encode(level).value_or(0));
  }
  report.set_max_integer(format.max_integer());
  report.set_int8_fast_path(format.fits_int8());
  report.set_max_level(format.max_level());
  return report;
}

std::string LevelsText(const esb::v1::LevelsReport& r) {
  std::string out = absl::StrFormat(
      "ESB format: %d bits, sb = %d, %s (E = %d exponent bit%s, L = %d "
      "mantissa bit%s)\n",
      r.bits(), r.sb(), r.signed_() ? "signed" : "unsigned", r.exponent_bits(),
      r.exponent_bits() == 1 ? "" : "s", r.mantissa_bits(),
      r.mantissa_bits() == 1 ? "" : "s");
  absl::StrAppendFormat(
      &out, "%d levels; largest level %g alpha; largest integer %d: %s\n\n",
      r.levels_size(), r.max_level(), r.max_integer(),
      r.int8_fast_path()
          ? absl::StrCat("fits the ", r.signed_() ? "int8" : "uint8",
                         " fast path")
          : absl::StrCat("does not fit ", r.signed_() ? "int8" : "uint8",
                         "; runs on the wide-integer reference path"));
  absl::StrAppendFormat(&out, "  %12s  %8s  %*s\n", "level (alpha)", "integer",
                        r.bits() + 2, "code");
  for (int i = 0; i < r.levels_size(); ++i) {
    std::string bits;
    for (int b = r.bits() - 1; b >= 0; --b) {
      bits.push_back(((r.codes(i) >> b) & 1u) ? '1' : '0');
    }
    absl::StrAppendFormat(&out, "  %12g  %8d  0b%s\n", r.levels(i),
                          r.integers(i), bits);
  }
  return out;
}

}  // namespace esb::client
