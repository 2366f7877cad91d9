#include "core/pipeline/config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace esb::pipeline {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

const char* DdaName(DdaRule r) {
  switch (r) {
    case DdaRule::kOutput:
      return "output";
    case DdaRule::kMse:
      return "mse";
    case DdaRule::kGaussian:
      return "gaussian";
    case DdaRule::kMinMax:
      return "minmax";
  }
  return "?";
}

const char* MethodName(Method m) {
  switch (m) {
    case Method::kEsb:
      return "esb";
    case Method::kUniform:
      return "uniform";
    case Method::kPot:
      return "pot";
  }
  return "?";
}

// The sb a method gives `bits` for a signed or unsigned tensor.
int MethodSb(Method m, int bits, int esb_sb, bool is_signed) {
  switch (m) {
    case Method::kUniform:
      return is_signed ? bits - 1 : bits;
    case Method::kPot:
      return 1;
    case Method::kEsb:
      break;
  }
  return esb_sb;
}

}  // namespace

std::string JobSettings::Summary() const {
  return absl::StrCat(
      "W", weight_bits, "A", act_bits, " ",
      sb_auto ? absl::StrCat("sb auto (max ", max_sb, ")")
              : absl::StrCat("sb ", weight_sb),
      " act sb ", act_sb, " ", MethodName(method), " dda=", DdaName(dda),
      per_channel ? " per-channel" : " per-tensor",
      all_layers ? " all layers" : absl::StrCat(" edges ", edge_bits, "-bit"));
}

std::map<std::string, std::string> JobSettings::AsMap() const {
  return {{"weight_bits", absl::StrCat(weight_bits)},
          {"weight_sb", sb_auto ? "auto" : absl::StrCat(weight_sb)},
          {"max_sb", absl::StrCat(max_sb)},
          {"act_bits", absl::StrCat(act_bits)},
          {"act_sb", absl::StrCat(act_sb)},
          {"granularity", per_channel ? "per-channel" : "per-tensor"},
          {"dda", DdaName(dda)},
          {"method", MethodName(method)},
          {"edge_bits", all_layers ? "off" : absl::StrCat(edge_bits)},
          {"calib_count", absl::StrCat(calib_count)},
          {"seed", absl::StrCat(seed)}};
}

absl::StatusOr<esb::v1::Granularity> ParseGranularity(absl::string_view name) {
  if (name == "per-channel") return esb::v1::GRANULARITY_PER_CHANNEL;
  if (name == "per-tensor") return esb::v1::GRANULARITY_PER_TENSOR;
  return Bad("granularity", absl::StrCat("'", name,
                                         "' is unknown; valid: "
                                         "per-channel, per-tensor"));
}

absl::StatusOr<esb::v1::DdaRule> ParseDdaRule(absl::string_view name) {
  if (name == "output") return esb::v1::DDA_RULE_OUTPUT;
  if (name == "mse") return esb::v1::DDA_RULE_MSE;
  if (name == "gaussian") return esb::v1::DDA_RULE_GAUSSIAN;
  return Bad("dda", absl::StrCat("'", name,
                                 "' is unknown; valid: output, mse, gaussian"));
}

absl::StatusOr<esb::v1::Method> ParseMethod(absl::string_view name) {
  if (name == "esb") return esb::v1::METHOD_ESB;
  if (name == "uniform") return esb::v1::METHOD_UNIFORM;
  if (name == "pot") return esb::v1::METHOD_POT;
  return Bad("method",
             absl::StrCat("'", name, "' is unknown; valid: esb, uniform, pot"));
}

absl::StatusOr<esb::v1::ScaleRule> ParseScaleRule(absl::string_view name) {
  if (name == "dda") return esb::v1::SCALE_RULE_DDA;
  if (name == "minmax") return esb::v1::SCALE_RULE_MINMAX;
  return Bad("scale_rule",
             absl::StrCat("'", name, "' is unknown; valid: dda, minmax"));
}

absl::string_view StageName(esb::v1::Stage stage) {
  switch (stage) {
    case esb::v1::STAGE_LOAD:
      return "load";
    case esb::v1::STAGE_CALIBRATE:
      return "calibrate";
    case esb::v1::STAGE_FIT:
      return "fit";
    case esb::v1::STAGE_EXPORT:
      return "export";
    case esb::v1::STAGE_EVAL:
      return "eval";
    default:
      return "";
  }
}

absl::string_view JobStateName(esb::v1::JobState state) {
  switch (state) {
    case esb::v1::JOB_STATE_QUEUED:
      return "queued";
    case esb::v1::JOB_STATE_RUNNING:
      return "running";
    case esb::v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case esb::v1::JOB_STATE_FAILED:
      return "failed";
    case esb::v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "";
  }
}

absl::StatusOr<JobSettings> ResolveConfig(const esb::v1::JobConfig& c) {
  const JobSettings d;  // The defaults.
  JobSettings s;
  switch (c.method()) {
    case esb::v1::METHOD_UNSPECIFIED:
    case esb::v1::METHOD_ESB:
      s.method = Method::kEsb;
      break;
    case esb::v1::METHOD_UNIFORM:
      s.method = Method::kUniform;
      break;
    case esb::v1::METHOD_POT:
      s.method = Method::kPot;
      break;
    default:
      return Bad("method", absl::StrCat(static_cast<int>(c.method()),
                                        " is not a Method value"));
  }
  switch (c.dda()) {
    case esb::v1::DDA_RULE_UNSPECIFIED:
    case esb::v1::DDA_RULE_OUTPUT:
      s.dda = DdaRule::kOutput;
      break;
    case esb::v1::DDA_RULE_MSE:
      s.dda = DdaRule::kMse;
      break;
    case esb::v1::DDA_RULE_GAUSSIAN:
      s.dda = DdaRule::kGaussian;
      break;
    default:
      return Bad("dda", absl::StrCat(static_cast<int>(c.dda()),
                                     " is not a DdaRule value"));
  }
  switch (c.scale_rule()) {
    case esb::v1::SCALE_RULE_UNSPECIFIED:
    case esb::v1::SCALE_RULE_DDA:
      break;
    case esb::v1::SCALE_RULE_MINMAX:
      if (c.dda() != esb::v1::DDA_RULE_UNSPECIFIED) {
        return Bad("scale_rule",
                   "minmax scales take no DDA rule; leave dda unset");
      }
      s.dda = DdaRule::kMinMax;
      break;
    default:
      return Bad("scale_rule", absl::StrCat(static_cast<int>(c.scale_rule()),
                                            " is not a ScaleRule value"));
  }
  switch (c.granularity()) {
    case esb::v1::GRANULARITY_UNSPECIFIED:
    case esb::v1::GRANULARITY_PER_CHANNEL:
      s.per_channel = true;
      break;
    case esb::v1::GRANULARITY_PER_TENSOR:
      s.per_channel = false;
      break;
    default:
      return Bad("granularity", absl::StrCat(static_cast<int>(c.granularity()),
                                             " is not a Granularity value"));
  }
  if (c.sb_auto() && c.has_weight_sb()) {
    return Bad("weight_sb",
               "given together with sb_auto; sb_auto chooses sb per layer "
               "(bound it with max_sb)");
  }
  if (!c.sb_auto() && c.has_max_sb()) {
    return Bad("max_sb", "applies to sb_auto only; set sb_auto or drop it");
  }
  if (c.all_layers() && c.has_edge_bits()) {
    return Bad("edge_bits",
               "given together with all_layers, which quantizes the first "
               "and last layers like the rest");
  }
  s.weight_bits = c.has_weight_bits() ? c.weight_bits() : d.weight_bits;
  s.act_bits = c.has_act_bits() ? c.act_bits() : d.act_bits;
  s.weight_sb = c.has_weight_sb() ? c.weight_sb() : d.weight_sb;
  s.act_sb = c.has_act_sb() ? c.act_sb() : d.act_sb;
  s.act_sb_set = c.has_act_sb();
  s.sb_auto = c.sb_auto();
  s.edge_bits = c.has_edge_bits() ? c.edge_bits() : d.edge_bits;
  s.all_layers = c.all_layers();
  s.calib_count = c.has_calib_count() ? c.calib_count() : d.calib_count;
  s.seed = c.seed();
  s.max_sb = c.has_max_sb() ? c.max_sb() : s.weight_bits - 1;

  for (auto [field, bits] : {std::pair{"weight_bits", s.weight_bits},
                             std::pair{"act_bits", s.act_bits},
                             std::pair{"edge_bits", s.edge_bits}}) {
    if (bits < Format::kMinBits || bits > Format::kMaxBits) {
      return Bad(field,
                 absl::StrCat(bits, " is out of range [", Format::kMinBits,
                              ", ", Format::kMaxBits, "]"));
    }
  }
  if (s.method == Method::kEsb && !s.sb_auto) {
    if (absl::StatusOr<Format> f =
            Format::Create(s.weight_bits, s.weight_sb, true);
        !f.ok()) {
      return Bad("weight_sb", f.status().message());
    }
  }
  if (s.method == Method::kPot &&
      !Format::Create(s.weight_bits, 1, true).ok()) {
    return Bad(
        "weight_bits",
        absl::StrCat("power-of-two weights need bits <= 5 (", s.weight_bits,
                     " leaves more than 4 exponent bits)"));
  }
  if (s.sb_auto) {
    const std::vector<int> valid = Format::ValidSb(s.weight_bits, true);
    if (s.max_sb < valid.front()) {
      return Bad("max_sb", absl::StrCat(s.max_sb, " allows no valid sb for ",
                                        s.weight_bits, "-bit weights {",
                                        absl::StrJoin(valid, ", "), "}"));
    }
  }
  if (s.method == Method::kEsb) {
    const bool any = Format::Create(s.act_bits, s.act_sb, true).ok() ||
                     Format::Create(s.act_bits, s.act_sb, false).ok();
    if (!any) {
      return Bad(
          "act_sb",
          absl::StrCat("sb = ", s.act_sb, " is invalid for ", s.act_bits,
                       "-bit activations; valid: signed {",
                       absl::StrJoin(Format::ValidSb(s.act_bits, true), ", "),
                       "}, unsigned {",
                       absl::StrJoin(Format::ValidSb(s.act_bits, false), ", "),
                       "}"));
    }
  }
  if (s.calib_count < 1 || s.calib_count > JobSettings::kMaxCalibCount) {
    return Bad("calib_count",
               absl::StrCat(s.calib_count, " is out of range [1, ",
                            JobSettings::kMaxCalibCount, "]"));
  }
  s.mean.assign(c.mean().begin(), c.mean().end());
  s.std.assign(c.std().begin(), c.std().end());
  if (s.mean.empty() != s.std.empty()) {
    return Bad("mean/std", "give both or neither");
  }
  if (s.mean.size() != s.std.size()) {
    if (s.mean.size() != 1 && s.std.size() != 1) {
      return Bad("mean/std", absl::StrCat(s.mean.size(), " mean and ",
                                          s.std.size(), " std values"));
    }
    // One value stands for every channel.
    if (s.mean.size() == 1) s.mean.assign(s.std.size(), s.mean[0]);
    if (s.std.size() == 1) s.std.assign(s.mean.size(), s.std[0]);
  }
  for (float v : s.std) {
    if (!(v > 0.0f)) return Bad("std", "every value must be > 0");
  }
  for (const auto& o : c.overrides()) {
    if (o.node().empty()) return Bad("overrides", "an override names no node");
    if (!o.has_bits() && !o.has_sb() && !o.has_act_bits() && !o.has_act_sb()) {
      return Bad("overrides", absl::StrCat("the override of layer '", o.node(),
                                           "' sets nothing; give bits, sb, "
                                           "act_bits or act_sb"));
    }
    if (s.overrides.count(o.node())) {
      return Bad("overrides",
                 absl::StrCat("layer '", o.node(),
                              "' is overridden twice; merge the settings "
                              "into one override"));
    }
    for (auto [has, bits] : {std::pair{o.has_bits(), o.bits()},
                             std::pair{o.has_act_bits(), o.act_bits()}}) {
      if (has && (bits < Format::kMinBits || bits > Format::kMaxBits)) {
        return Bad("overrides",
                   absl::StrCat("layer '", o.node(), "': bits ", bits,
                                " out of range [", Format::kMinBits, ", ",
                                Format::kMaxBits, "]"));
      }
    }
    s.overrides[o.node()] = o;
  }
  return s;
}

absl::StatusOr<LayerPlan> PlanLayer(const JobSettings& s,
                                    const std::string& node, bool edge) {
  LayerPlan plan;
  plan.edge = edge && !s.all_layers;
  int wbits = plan.edge ? s.edge_bits : s.weight_bits;
  int abits = plan.edge ? s.edge_bits : s.act_bits;
  const auto o = s.overrides.find(node);
  const esb::v1::LayerOverride* ov =
      o == s.overrides.end() ? nullptr : &o->second;
  // Bits first: the sb a method gives depends on them.
  if (ov != nullptr && ov->has_bits()) wbits = ov->bits();
  if (ov != nullptr && ov->has_act_bits()) abits = ov->act_bits();
  // Edge layers run the common 8-bit practice: uniform grids.
  const Method m = plan.edge ? Method::kUniform : s.method;
  int wsb = MethodSb(m, wbits, s.weight_sb, true);
  plan.act_sb_signed = MethodSb(m, abits, s.act_sb, true);
  plan.act_sb_unsigned = MethodSb(m, abits, s.act_sb, false);
  bool auto_sb = s.sb_auto && !plan.edge && m == Method::kEsb;
  plan.act_sb_auto = auto_sb && !s.act_sb_set;
  if (ov != nullptr && ov->has_sb()) {
    wsb = ov->sb();
    auto_sb = false;
  }
  if (ov != nullptr && ov->has_act_sb()) {
    plan.act_sb_signed = plan.act_sb_unsigned = ov->act_sb();
    plan.act_sb_auto = false;
  }
  plan.act_bits = abits;
  if (auto_sb) {
    for (int sb : Format::ValidSb(wbits, true)) {
      if (sb <= s.max_sb) {
        plan.weight_formats.push_back(*Format::Create(wbits, sb, true));
      }
    }
  } else {
    absl::StatusOr<Format> f = Format::Create(wbits, wsb, true);
    if (!f.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", node, "' weights: ", f.status().message()));
    }
    plan.weight_formats.push_back(*f);
  }
  if (plan.weight_formats.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", node, "': no weight format within max_sb"));
  }
  return plan;
}

absl::StatusOr<Format> ActivationFormat(const LayerPlan& plan, bool is_signed,
                                        const std::string& node) {
  absl::StatusOr<Format> f = Format::Create(
      plan.act_bits, is_signed ? plan.act_sb_signed : plan.act_sb_unsigned,
      is_signed);
  if (!f.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer '", node, "' reads ", is_signed ? "signed" : "non-negative",
        " activations: ", f.status().message()));
  }
  return f;
}

}  // namespace esb::pipeline
