#include "fpga_agent/infer_codec.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using inference::ModelInferRequest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ModelSignature Signature() {
  ModelSignature s;
  s.model = "tiny";
  s.input = {"x", {-1, 1, 2, 2}};
  s.outputs = {{"logits", {-1, 3}}, {"prob", {-1, 3}}};
  s.normalization = {{0.5f}, {0.25f}};
  s.max_batch = 4;
  return s;
}

ModelInferRequest Request(const std::string& datatype,
                          const std::vector<int64_t>& shape) {
  ModelInferRequest r;
  r.set_model_name("tiny");
  auto* in = r.add_inputs();
  in->set_name("x");
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return r;
}

std::string RawFloats(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// An error's code and that its message holds every one of `parts`.
void ExpectInvalid(const ModelInferRequest& r,
                   const std::vector<std::string>& parts) {
  absl::StatusOr<graph::Tensor> t = DecodeInput(r, Signature());
  ASSERT_TRUE(absl::IsInvalidArgument(t.status())) << t.status();
  for (const std::string& p : parts) {
    EXPECT_THAT(t.status().message(), HasSubstr(p));
  }
}

TEST(InferCodecTest, Fp32InContentsAndRawGiveTheSameTensor) {
  const std::vector<float> values = {1, -2, 3.5f, 4, 5, 6, 7, 8};
  ModelInferRequest typed = Request("FP32", {2, 1, 2, 2});
  for (float v : values) {
    typed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(v);
  }
  ModelInferRequest raw = Request("FP32", {2, 1, 2, 2});
  raw.add_raw_input_contents(RawFloats(values));
  for (const ModelInferRequest* r : {&typed, &raw}) {
    absl::StatusOr<graph::Tensor> t = DecodeInput(*r, Signature());
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_THAT(t->shape, ElementsAre(2, 1, 2, 2));
    EXPECT_EQ(t->data, values);
  }
}

TEST(InferCodecTest, Uint8PixelsAreNormalizedWithThePackagesMeanAndStd) {
  const std::vector<uint8_t> pixels = {0, 51, 128, 255};
  const float expected[] = {
      (0.0f / 255 - 0.5f) / 0.25f, (51.0f / 255 - 0.5f) / 0.25f,
      (128.0f / 255 - 0.5f) / 0.25f, (255.0f / 255 - 0.5f) / 0.25f};
  ModelInferRequest typed = Request("UINT8", {1, 1, 2, 2});
  for (uint8_t p : pixels) {
    typed.mutable_inputs(0)->mutable_contents()->add_uint_contents(p);
  }
  ModelInferRequest raw = Request("UINT8", {1, 1, 2, 2});
  raw.add_raw_input_contents(std::string(pixels.begin(), pixels.end()));
  for (const ModelInferRequest* r : {&typed, &raw}) {
    absl::StatusOr<graph::Tensor> t = DecodeInput(*r, Signature());
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_EQ(t->data.size(), 4u);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(t->data[i], expected[i]) << i;
  }
  typed.mutable_inputs(0)->mutable_contents()->set_uint_contents(2, 256);
  ExpectInvalid(typed, {"uint_contents[2] is 256", "0..255"});
}

TEST(InferCodecTest, MismatchesNameTheFieldAndTheExpectedValue) {
  ModelInferRequest none = Request("FP32", {1, 1, 2, 2});
  none.clear_inputs();
  ExpectInvalid(none, {"takes 1 input ('x')", "has 0"});

  ModelInferRequest name = Request("FP32", {1, 1, 2, 2});
  name.mutable_inputs(0)->set_name("y");
  ExpectInvalid(name, {"input 'y' is not an input", "expected 'x'"});

  ExpectInvalid(Request("INT64", {1, 1, 2, 2}),
                {"datatype 'INT64'", "expected FP32"});
  ExpectInvalid(Request("FP32", {1, 2, 2}),
                {"shape [1,2,2]", "expected [-1,1,2,2]"});
  ExpectInvalid(Request("FP32", {1, 1, 2, 3}),
                {"shape [1,1,2,3]", "expected [-1,1,2,2]"});
  ExpectInvalid(Request("FP32", {5, 1, 2, 2}),
                {"batch of 5", "expected 1..4", "--max-batch"});
  ExpectInvalid(Request("FP32", {0, 1, 2, 2}), {"batch of 0"});

  ModelInferRequest short_typed = Request("FP32", {1, 1, 2, 2});
  short_typed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  ExpectInvalid(short_typed, {"1 values in contents.fp32_contents", "needs 4"});

  ModelInferRequest wrong_field = Request("FP32", {1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) {
    wrong_field.mutable_inputs(0)->mutable_contents()->add_int_contents(i);
  }
  ExpectInvalid(wrong_field, {"0 values in contents.fp32_contents",
                              "found in int_contents (4 values)"});

  ModelInferRequest short_raw = Request("FP32", {1, 1, 2, 2});
  short_raw.add_raw_input_contents(std::string(15, '\0'));
  ExpectInvalid(short_raw,
                {"raw_input_contents[0]", "15 bytes", "FP32 needs 16"});

  ModelInferRequest both = Request("FP32", {1, 1, 2, 2});
  both.add_raw_input_contents(RawFloats({1, 2, 3, 4}));
  both.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  ExpectInvalid(both, {"both contents and raw_input_contents"});

  ModelInferRequest two_raw = Request("FP32", {1, 1, 2, 2});
  two_raw.add_raw_input_contents(RawFloats({1, 2, 3, 4}));
  two_raw.add_raw_input_contents(RawFloats({1, 2, 3, 4}));
  ExpectInvalid(two_raw, {"raw_input_contents has 2 entries"});
}

TEST(InferCodecTest, OutputsFollowTheRequestsListAndEncoding) {
  const std::vector<graph::Tensor> outputs = {{{2, 3}, {1, 2, 3, 4, 5, 6}},
                                              {{2, 3}, {7, 8, 9, 10, 11, 12}}};
  ModelInferRequest typed = Request("FP32", {2, 1, 2, 2});
  auto all = SelectOutputs(typed, Signature());
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, ElementsAre(0, 1));
  inference::ModelInferResponse response;
  EncodeOutputs(typed, Signature(), *all, outputs, &response);
  ASSERT_EQ(response.outputs_size(), 2);
  EXPECT_EQ(response.raw_output_contents_size(), 0);
  EXPECT_EQ(response.outputs(1).name(), "prob");
  EXPECT_EQ(response.outputs(1).datatype(), "FP32");
  EXPECT_THAT(response.outputs(1).shape(), ElementsAre(2, 3));
  EXPECT_THAT(response.outputs(1).contents().fp32_contents(),
              ElementsAre(7, 8, 9, 10, 11, 12));

  ModelInferRequest raw = Request("FP32", {2, 1, 2, 2});
  raw.add_raw_input_contents(std::string(32, '\0'));
  raw.add_outputs()->set_name("prob");
  auto one = SelectOutputs(raw, Signature());
  ASSERT_TRUE(one.ok());
  EXPECT_THAT(*one, ElementsAre(1));
  inference::ModelInferResponse raw_response;
  EncodeOutputs(raw, Signature(), *one, outputs, &raw_response);
  ASSERT_EQ(raw_response.outputs_size(), 1);
  EXPECT_EQ(raw_response.outputs(0).name(), "prob");
  EXPECT_EQ(raw_response.outputs(0).contents().fp32_contents_size(), 0);
  ASSERT_EQ(raw_response.raw_output_contents_size(), 1);
  EXPECT_EQ(raw_response.raw_output_contents(0),
            RawFloats({7, 8, 9, 10, 11, 12}));

  ModelInferRequest unknown = Request("FP32", {1, 1, 2, 2});
  unknown.add_outputs()->set_name("softmax");
  auto bad = SelectOutputs(unknown, Signature());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(bad.status().message(),
              HasSubstr("output 'softmax' is not an output of model 'tiny'; "
                        "its outputs are 'logits', 'prob'"));
}

TEST(InferCodecTest, ModelVersions) {
  EXPECT_EQ(*ParseModelVersion(""), 0);
  EXPECT_EQ(*ParseModelVersion("3"), 3);
  for (const char* bad : {"0", "-1", "v2", "1.5"}) {
    auto v = ParseModelVersion(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(v.status())) << bad;
    EXPECT_THAT(v.status().message(), HasSubstr("not a version number"));
  }
}

}  // namespace
}  // namespace esb::agent
