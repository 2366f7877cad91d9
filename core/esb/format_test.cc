#include "core/esb/format.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Name(const Format& f) { return f.ToString(); }

TEST(FormatTest, RejectsInvalidCombinationsNamingTheValidRange) {
  auto bad_bits = Format::Create(9, 2, true);
  ASSERT_FALSE(bad_bits.ok());
  EXPECT_EQ(bad_bits.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_bits.status().message(), HasSubstr("bits = 9"));
  EXPECT_THAT(bad_bits.status().message(), HasSubstr("[2, 8]"));

  auto bad_sb = Format::Create(8, 2, true);  // E = 6 > 4.
  ASSERT_FALSE(bad_sb.ok());
  EXPECT_EQ(bad_sb.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_sb.status().message(), HasSubstr("sb = 2"));
  EXPECT_THAT(bad_sb.status().message(), HasSubstr("{4, 5, 6, 7}"));

  EXPECT_FALSE(Format::Create(4, 4, true).ok());  // E = 0.
  EXPECT_FALSE(Format::Create(4, 0, true).ok());  // L < 0.
  EXPECT_FALSE(Format::Create(1, 1, true).ok());
  EXPECT_TRUE(Format::Create(4, 4, false).ok());  // Unsigned: E = 1.
}

TEST(FormatTest, ValidSbMatchesCreate) {
  for (bool is_signed : {true, false}) {
    for (int bits = 0; bits <= 10; ++bits) {
      const std::vector<int> valid = Format::ValidSb(bits, is_signed);
      for (int sb = -1; sb <= 10; ++sb) {
        const bool listed =
            std::find(valid.begin(), valid.end(), sb) != valid.end();
        EXPECT_EQ(Format::Create(bits, sb, is_signed).ok(), listed)
            << bits << " " << sb << " " << is_signed;
      }
    }
  }
  EXPECT_EQ(Format::All().size(), 47u);
}

TEST(FormatTest, LevelCounts) {
  for (const Format& f : Format::All()) {
    const std::vector<float> mags = f.Magnitudes();
    const size_t expected = size_t{1}
                            << (f.is_signed() ? f.bits() - 1 : f.bits());
    EXPECT_EQ(mags.size(), expected) << Name(f);
    EXPECT_TRUE(std::is_sorted(mags.begin(), mags.end())) << Name(f);
    EXPECT_EQ(std::adjacent_find(mags.begin(), mags.end()), mags.end());
    EXPECT_EQ(mags.front(), 0.0f);
    EXPECT_EQ(mags.back(), f.max_level()) << Name(f);
    const std::vector<float> levels = f.Levels();
    EXPECT_EQ(levels.size(), f.is_signed() ? 2 * expected - 1 : expected);
    EXPECT_TRUE(std::is_sorted(levels.begin(), levels.end()));
  }
}

TEST(FormatTest, Fp4E2M1) {
  auto f = Format::Create(4, 2, true);
  ASSERT_TRUE(f.ok());
  EXPECT_THAT(f->Magnitudes(), ElementsAre(0, 0.5, 1, 1.5, 2, 3, 4, 6));
  EXPECT_EQ(f->max_integer(), 12);
  EXPECT_TRUE(f->fits_int8());
}

TEST(FormatTest, SbOneIsPowerOfTwo) {
  for (const Format& f : Format::All()) {
    if (f.sb() != 1) continue;
    std::vector<float> expected = {0.0f};
    for (int e = 0; e <= f.max_exponent(); ++e) {
      expected.push_back(std::ldexp(1.0f, e));
    }
    EXPECT_EQ(f.Magnitudes(), expected) << Name(f);
  }
}

TEST(FormatTest, SignedSbBitsMinusOneIsUniform) {
  for (int bits = 2; bits <= 8; ++bits) {
    auto f = Format::Create(bits, bits - 1, true);
    ASSERT_TRUE(f.ok()) << bits;
    const int l = f->mantissa_bits();
    std::vector<float> expected;
    for (int k = 0; k < (1 << (bits - 1)); ++k) {
      expected.push_back(std::ldexp(static_cast<float>(k), -l));
    }
    EXPECT_EQ(f->Magnitudes(), expected) << bits;
    EXPECT_EQ(f->max_integer(), (1 << (bits - 1)) - 1);
    EXPECT_TRUE(f->fits_int8());
  }
}

TEST(FormatTest, IntegerViewHasAtMostSbSignificantBits) {
  for (const Format& f : Format::All()) {
    int32_t largest = 0;
    for (float m : f.Magnitudes()) {
      const int32_t i = f.ToInteger(m);
      EXPECT_EQ(std::ldexp(static_cast<float>(i), -f.mantissa_bits()), m);
      if (i == 0) continue;
      const auto u = static_cast<uint32_t>(i);
      EXPECT_LE(std::bit_width(u) - std::countr_zero(u), f.sb()) << Name(f);
      largest = std::max(largest, i);
    }
    EXPECT_EQ(largest, f.max_integer()) << Name(f);
    EXPECT_EQ(f.fits_int8(), largest <= (f.is_signed() ? 127 : 255));
  }
}

TEST(FormatTest, RoundLeavesLevelsUnchanged) {
  for (const Format& f : Format::All()) {
    for (float level : f.Levels()) {
      EXPECT_EQ(f.Round(level), level) << Name(f);
    }
  }
}

// Round(v) must be a nearest level, and among two nearest the one that is an
// even multiple of the rounding step.
TEST(FormatTest, RoundIsNearestLevelIdempotentMonotonicAndOdd) {
  std::mt19937 rng(7);
  for (const Format& f : Format::All()) {
    const std::vector<float> levels = f.Levels();
    const float c = f.max_level();
    std::uniform_real_distribution<float> dist(-1.3f * c, 1.3f * c);
    std::vector<float> xs(4000);
    for (float& x : xs) x = dist(rng);
    std::sort(xs.begin(), xs.end());
    float previous = -INFINITY;
    for (float x : xs) {
      const float q = f.Round(x);
      ASSERT_TRUE(std::binary_search(levels.begin(), levels.end(), q))
          << Name(f) << " x=" << x << " q=" << q;
      // Distances in double are exact for these floats.
      double best = INFINITY;
      for (float l : levels) {
        best = std::min(best, std::fabs(static_cast<double>(x) - l));
      }
      EXPECT_EQ(std::fabs(static_cast<double>(x) - q), best)
          << Name(f) << " x=" << x;
      EXPECT_EQ(f.Round(q), q);
      EXPECT_GE(q, previous) << Name(f) << " x=" << x;
      previous = q;
      if (f.is_signed()) {
        EXPECT_EQ(f.Round(-x), -q);
      }
    }
  }
}

TEST(FormatTest, TiesRoundToEven) {
  for (const Format& f : Format::All()) {
    const std::vector<float> mags = f.Magnitudes();
    const int l = f.mantissa_bits();
    for (size_t k = 0; k + 1 < mags.size(); ++k) {
      const float mid = 0.5f * (mags[k] + mags[k + 1]);
      // The step of the binade the midpoint lies in.
      const int ns =
          mid < 1.0f ? 0
                     : std::min(static_cast<int>(std::floor(std::log2(mid))),
                                f.max_exponent());
      const float step = std::ldexp(1.0f, ns - l);
      const float lo_units = mags[k] / step;
      const float expected =
          std::fmod(lo_units, 2.0f) == 0.0f ? mags[k] : mags[k + 1];
      EXPECT_EQ(f.Round(mid), expected) << Name(f) << " mid=" << mid;
      if (f.is_signed()) {
        EXPECT_EQ(f.Round(-mid), -expected);
      }
    }
    // Past the largest level everything clips to it.
    EXPECT_EQ(f.Round(f.max_level() * 1.5f), f.max_level());
  }
}

TEST(FormatTest, SpecialValues) {
  auto s = Format::Create(4, 2, true);
  auto u = Format::Create(4, 2, false);
  ASSERT_TRUE(s.ok() && u.ok());
  EXPECT_EQ(s->Round(INFINITY), 6.0f);
  EXPECT_EQ(s->Round(-INFINITY), -6.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(s->Round(NAN)), kCanonicalNanBits);
  EXPECT_EQ(u->Round(-3.0f), 0.0f);
  EXPECT_FALSE(std::signbit(u->Round(-3.0f)));
  EXPECT_EQ(u->Round(-INFINITY), 0.0f);
  EXPECT_EQ(u->Round(INFINITY), u->max_level());
  EXPECT_EQ(s->Round(1e-40f), 0.0f);  // Denormal.
  EXPECT_TRUE(std::signbit(s->Round(-1e-40f)));
}

TEST(FormatTest, EncodeDecodeRoundTripsEveryLevel) {
  for (const Format& f : Format::All()) {
    std::set<uint32_t> codes;
    for (float level : f.Levels()) {
      auto code = f.Encode(level);
      ASSERT_TRUE(code.ok()) << Name(f) << " " << level;
      EXPECT_LT(*code, 1u << f.bits());
      codes.insert(*code);
      auto back = f.Decode(*code);
      ASSERT_TRUE(back.ok());
      EXPECT_EQ(*back, level) << Name(f);
    }
    EXPECT_EQ(codes.size(), f.Levels().size()) << Name(f);
    // Every code decodes to a level; only the signed "negative zero" code is
    // not produced by Encode.
    const std::vector<float> levels = f.Levels();
    for (uint32_t code = 0; code < (1u << f.bits()); ++code) {
      auto level = f.Decode(code);
      ASSERT_TRUE(level.ok());
      EXPECT_TRUE(std::binary_search(levels.begin(), levels.end(), *level));
    }
    EXPECT_FALSE(f.Decode(1u << f.bits()).ok());
  }
}

TEST(FormatTest, CodeLayoutIsSignExponentMantissa) {
  auto f = Format::Create(4, 2, true);  // 1 sign, 2 exponent, 1 mantissa.
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f->Encode(0.5f), 0b0001u);  // Subnormal run, j = 1.
  EXPECT_EQ(*f->Encode(1.0f), 0b0010u);  // Exponent field 1, j = 0.
  EXPECT_EQ(*f->Encode(3.0f), 0b0101u);  // 1.5 * 2^1.
  EXPECT_EQ(*f->Encode(-6.0f), 0b1111u);
  EXPECT_EQ(*f->Encode(-0.0f), 0u);
}

TEST(FormatTest, EncodeRejectsOffGridValues) {
  auto f = Format::Create(4, 2, true);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->Encode(2.5f).ok());
  EXPECT_FALSE(f->Encode(7.0f).ok());
  EXPECT_FALSE(f->Encode(NAN).ok());
  auto u = Format::Create(4, 2, false);
  EXPECT_FALSE(u->Encode(-1.0f).ok());
}

}  // namespace
}  // namespace esb
