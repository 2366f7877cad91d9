#include "core/pipeline/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::pipeline {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, Defaults) {
  auto s = ResolveConfig(esb::v1::JobConfig{});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->weight_bits, 4);
  EXPECT_EQ(s->weight_sb, 2);
  EXPECT_EQ(s->act_bits, 4);
  EXPECT_EQ(s->edge_bits, 8);
  EXPECT_EQ(s->calib_count, 512);
  EXPECT_EQ(s->dda, DdaRule::kOutput);
  EXPECT_TRUE(s->per_channel);
  EXPECT_FALSE(s->all_layers);
}

TEST(ConfigTest, EveryBadFieldIsNamed) {
  struct Case {
    std::function<void(esb::v1::JobConfig&)> set;
    const char* field;
  };
  const Case cases[] = {
      {[](auto& c) { c.set_weight_bits(9); }, "weight_bits"},
      {[](auto& c) { c.set_weight_sb(4); }, "weight_sb"},
      {[](auto& c) { c.set_act_bits(1); }, "act_bits"},
      {[](auto& c) { c.set_act_sb(7); }, "act_sb"},
      {[](auto& c) { c.set_method(static_cast<esb::v1::Method>(9)); },
       "method"},
      {[](auto& c) { c.set_dda(static_cast<esb::v1::DdaRule>(9)); }, "dda"},
      {[](auto& c) { c.set_granularity(static_cast<esb::v1::Granularity>(9)); },
       "granularity"},
      {[](auto& c) { c.set_scale_rule(static_cast<esb::v1::ScaleRule>(9)); },
       "scale_rule"},
      // Contradictions are refused, naming the field that conflicts.
      {[](auto& c) {
         c.set_sb_auto(true);
         c.set_weight_sb(2);
       },
       "weight_sb: given together with sb_auto"},
      {[](auto& c) { c.set_max_sb(2); }, "max_sb: applies to sb_auto only"},
      {[](auto& c) {
         c.set_scale_rule(esb::v1::SCALE_RULE_MINMAX);
         c.set_dda(esb::v1::DDA_RULE_MSE);
       },
       "scale_rule: minmax scales take no DDA rule"},
      {[](auto& c) {
         c.set_all_layers(true);
         c.set_edge_bits(8);
       },
       "edge_bits: given together with all_layers"},
      {[](auto& c) { c.add_overrides()->set_node("fc"); },
       "override of layer 'fc' sets nothing"},
      {[](auto& c) {
         c.add_overrides()->set_node("fc");
         c.mutable_overrides(0)->set_bits(8);
         *c.add_overrides() = c.overrides(0);
       },
       "layer 'fc' is overridden twice"},
      {[](auto& c) { c.set_calib_count(0); }, "calib_count"},
      {[](auto& c) { c.set_edge_bits(12); }, "edge_bits"},
      {[](auto& c) {
         c.set_method(esb::v1::METHOD_POT);
         c.set_weight_bits(8);
       },
       "weight_bits"},
      {[](auto& c) {
         c.set_sb_auto(true);
         c.set_weight_bits(8);
         c.set_max_sb(2);
       },
       "max_sb"},
      {[](auto& c) {
         c.add_mean(0.5f);
         c.add_std(0.0f);
       },
       "std"},
      {[](auto& c) { c.add_mean(0.5f); }, "mean/std"},
      {[](auto& c) {
         auto* o = c.add_overrides();
         o->set_node("fc");
         o->set_bits(9);
       },
       "overrides"},
  };
  for (const Case& k : cases) {
    esb::v1::JobConfig c;
    k.set(c);
    auto s = ResolveConfig(c);
    ASSERT_FALSE(s.ok()) << k.field;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(k.field));
  }
}

TEST(ConfigTest, LayerPlans) {
  esb::v1::JobConfig c;
  c.set_sb_auto(true);
  auto s = ResolveConfig(c);
  ASSERT_TRUE(s.ok());
  auto inner = PlanLayer(*s, "conv2", false);
  ASSERT_TRUE(inner.ok());
  ASSERT_EQ(inner->weight_formats.size(), 3u);  // sb 1, 2, 3 at 4 bits.
  EXPECT_TRUE(inner->act_sb_auto);
  // A given act_sb stays: sb auto then picks the weights' sb only.
  c.set_act_sb(3);
  auto fixed_act = PlanLayer(*ResolveConfig(c), "conv2", false);
  ASSERT_TRUE(fixed_act.ok());
  EXPECT_FALSE(fixed_act->act_sb_auto);
  EXPECT_EQ(ActivationFormat(*fixed_act, false, "conv2")->sb(), 3);
  c.clear_act_sb();
  // Edge layers: 8-bit uniform weights and activations.
  auto edge = PlanLayer(*s, "conv1", true);
  ASSERT_TRUE(edge.ok());
  ASSERT_EQ(edge->weight_formats.size(), 1u);
  EXPECT_EQ(edge->weight_formats[0].bits(), 8);
  EXPECT_EQ(edge->weight_formats[0].sb(), 7);
  EXPECT_EQ(ActivationFormat(*edge, false, "conv1")->sb(), 8);
  EXPECT_EQ(ActivationFormat(*edge, true, "conv1")->sb(), 7);

  esb::v1::JobConfig pot;
  pot.set_method(esb::v1::METHOD_POT);
  auto p = ResolveConfig(pot);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(PlanLayer(*p, "x", false)->weight_formats[0].sb(), 1);
  esb::v1::JobConfig uni;
  uni.set_method(esb::v1::METHOD_UNIFORM);
  auto u = ResolveConfig(uni);
  ASSERT_TRUE(u.ok());
  auto up = PlanLayer(*u, "x", false);
  EXPECT_EQ(up->weight_formats[0].sb(), 3);
  EXPECT_EQ(ActivationFormat(*up, false, "x")->sb(), 4);

  esb::v1::JobConfig o;
  auto* ov = o.add_overrides();
  ov->set_node("fc");
  ov->set_bits(8);
  ov->set_sb(4);
  auto os = ResolveConfig(o);
  ASSERT_TRUE(os.ok());
  auto op = PlanLayer(*os, "fc", false);
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->weight_formats[0].bits(), 8);
  EXPECT_EQ(op->weight_formats[0].sb(), 4);
}

// Bits overrides come before the method's sb: a uniform baseline stays
// uniform at the overridden width, and so do edge layers.
TEST(ConfigTest, OverriddenBitsKeepTheMethodsGrid) {
  esb::v1::JobConfig c;
  c.set_method(esb::v1::METHOD_UNIFORM);
  auto* o = c.add_overrides();
  o->set_node("conv2");
  o->set_bits(6);
  o->set_act_bits(6);
  auto s = ResolveConfig(c);
  ASSERT_TRUE(s.ok()) << s.status();
  auto plan = PlanLayer(*s, "conv2", false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->weight_formats[0].sb(), 5);
  EXPECT_EQ(ActivationFormat(*plan, false, "conv2")->sb(), 6);
  auto edge = PlanLayer(*s, "conv2", true);
  ASSERT_TRUE(edge.ok()) << edge.status();
  EXPECT_EQ(edge->weight_formats[0].sb(), 5);

  esb::v1::JobConfig broadcast;
  broadcast.add_mean(0.5f);
  broadcast.add_std(0.2f);
  broadcast.add_std(0.3f);
  auto b = ResolveConfig(broadcast);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->mean, (std::vector<float>{0.5f, 0.5f}));
}

TEST(ConfigTest, NamesRoundTripThroughTheEnums) {
  EXPECT_EQ(*ParseDdaRule("gaussian"), esb::v1::DDA_RULE_GAUSSIAN);
  EXPECT_EQ(*ParseMethod("pot"), esb::v1::METHOD_POT);
  EXPECT_EQ(*ParseScaleRule("minmax"), esb::v1::SCALE_RULE_MINMAX);
  EXPECT_EQ(*ParseGranularity("per-tensor"), esb::v1::GRANULARITY_PER_TENSOR);
  EXPECT_THAT(std::string(ParseDdaRule("kl").status().message()),
              HasSubstr("valid: output, mse, gaussian"));
  EXPECT_EQ(StageName(esb::v1::STAGE_CALIBRATE), "calibrate");
  // Reports print names, not enum values.
  esb::v1::JobConfig c;
  c.set_dda(esb::v1::DDA_RULE_MSE);
  c.set_method(esb::v1::METHOD_UNIFORM);
  auto s = ResolveConfig(c);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->AsMap().at("dda"), "mse");
  EXPECT_EQ(s->AsMap().at("method"), "uniform");
  // The defaults live in JobSettings: an empty config gives them.
  auto d = ResolveConfig(esb::v1::JobConfig());
  ASSERT_TRUE(d.ok());
  const JobSettings defaults;
  EXPECT_EQ(d->weight_bits, defaults.weight_bits);
  EXPECT_EQ(d->weight_sb, defaults.weight_sb);
  EXPECT_EQ(d->edge_bits, defaults.edge_bits);
  EXPECT_EQ(d->calib_count, defaults.calib_count);
}

}  // namespace
}  // namespace esb::pipeline
