#include "client/fit.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/data/npy.h"

namespace esb::client {

absl::StatusOr<esb::v1::TensorFit> FitTensorFile(const Format& format,
                                                 const FitOptions& options) {
  absl::StatusOr<data::NpyArray> array = data::ReadNpy(options.path);
  if (!array.ok()) return array.status();
  if (array->dtype != data::NpyArray::DType::kFloat32) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.path,
                     ": DDA fits float32 tensors; this one is "
                     "uint8"));
  }
  if (array->size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.path, ": the tensor is empty"));
  }
  std::vector<ScaleFit> fits;
  int axis = -1;
  if (options.per_channel && !array->shape.empty()) {
    axis = options.axis;
    auto per_channel =
        FitPerChannel(format, array->f32, array->shape, axis, options.dda);
    if (!per_channel.ok()) {
      return absl::Status(
          per_channel.status().code(),
          absl::StrCat(options.path, ": ", per_channel.status().message()));
    }
    fits = *std::move(per_channel);
    if (axis < 0) axis += static_cast<int>(array->shape.size());
  } else {
    auto one = FitValues(format, array->f32, options.dda);
    if (!one.ok()) {
      return absl::Status(
          one.status().code(),
          absl::StrCat(options.path, ": ", one.status().message()));
    }
    fits.push_back(*one);
  }
  const ScaleFit total = Combine(fits);
  esb::v1::TensorFit out;
  out.set_name(options.path);
  out.mutable_format()->set_bits(format.bits());
  out.mutable_format()->set_sb(format.sb());
  out.mutable_format()->set_signed_(format.is_signed());
  const absl::string_view mode = DdaModeName(options.dda.mode);
  out.set_mode(mode.data(), mode.size());
  out.set_axis(axis);
  for (const ScaleFit& f : fits) {
    out.add_alpha(f.alpha);
    out.add_alpha0(f.alpha0);
  }
  out.set_count(total.count);
  out.set_mse(total.mse());
  out.set_sqnr_db(total.sqnr_db());
  out.set_clip_fraction(total.clip_fraction());
  out.set_mse_gaussian(total.mse0());
  return out;
}

std::string FitText(const esb::v1::TensorFit& fit, int max_rows) {
  const auto& f = fit.format();
  std::string out = absl::StrFormat(
      "%s: %d values, format %d bits sb = %d %s, DDA %s, %s\n", fit.name(),
      fit.count(), f.bits(), f.sb(), f.signed_() ? "signed" : "unsigned",
      fit.mode(),
      fit.axis() < 0
          ? std::string("one scale for the tensor")
          : absl::StrCat(fit.alpha_size(), " scales (per channel along axis ",
                         fit.axis(), ")"));
  const double gain = fit.mse_gaussian() > 0
                          ? 100.0 * (1.0 - fit.mse() / fit.mse_gaussian())
                          : 0.0;
  absl::StrAppendFormat(&out,
                        "  MSE %.4g (Gaussian closed form %.4g: %.1f%% lower)\n"
                        "  SQNR %.2f dB, clipped %.3f%% of values\n",
                        fit.mse(), fit.mse_gaussian(), gain, fit.sqnr_db(),
                        100.0 * fit.clip_fraction());
  std::vector<double> alphas(fit.alpha().begin(), fit.alpha().end());
  std::sort(alphas.begin(), alphas.end());
  absl::StrAppendFormat(&out, "  alpha min %.5g, median %.5g, max %.5g\n",
                        alphas.front(), alphas[alphas.size() / 2],
                        alphas.back());
  const int rows = std::min(max_rows, fit.alpha_size());
  if (rows > 0) {
    absl::StrAppendFormat(&out, "  %8s  %12s  %12s\n", "channel", "alpha",
                          "alpha0");
    for (int i = 0; i < rows; ++i) {
      absl::StrAppendFormat(&out, "  %8d  %12.6g  %12.6g\n", i, fit.alpha(i),
                            fit.alpha0(i));
    }
    if (rows < fit.alpha_size()) {
      absl::StrAppendFormat(&out, "  ... %d more (--json lists all)\n",
                            fit.alpha_size() - rows);
    }
  }
  return out;
}

}  // namespace esb::client
