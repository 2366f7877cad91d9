#include "core/runtime/reference.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/graph/shapes.h"

namespace esb::runtime {
namespace {

using graph::Node;
using graph::Op;
using graph::Tensor;
using Shape = std::vector<int64_t>;

// Multi-index of linear position `i` in `shape`.
Shape Unravel(int64_t i, const Shape& shape) {
  Shape index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = i % shape[d];
    i /= shape[d];
  }
  return index;
}

int64_t Ravel(const Shape& index, const Shape& shape) {
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + index[d];
  return i;
}

Tensor Make(const Shape& shape) {
  Tensor t;
  t.shape = shape;
  t.data.assign(t.size(), 0.0f);
  return t;
}

int64_t At(const Shape& v, size_t i, int64_t fallback) {
  return v.empty() ? fallback : v[i];
}

Tensor Conv(const Node& node, const Tensor& x, const Tensor& w, const Tensor* b,
            const Shape& y_shape) {
  Tensor y = Make(y_shape);
  const int64_t group = node.attrs.group;
  const int64_t cg = w.shape[1];          // Input channels per group.
  const int64_t mg = w.shape[0] / group;  // Output channels per group.
  const int64_t kh = w.shape[2], kw = w.shape[3];
  const int64_t sh = At(node.attrs.strides, 0, 1);
  const int64_t sw = At(node.attrs.strides, 1, 1);
  const int64_t dh = At(node.attrs.dilations, 0, 1);
  const int64_t dw = At(node.attrs.dilations, 1, 1);
  const int64_t pt = At(node.attrs.pads, 0, 0);
  const int64_t pl = At(node.attrs.pads, 1, 0);
  const int64_t in_h = x.shape[2], in_w = x.shape[3];
  for (int64_t i = 0; i < y.size(); ++i) {
    const Shape o = Unravel(i, y_shape);  // n, m, oh, ow
    const int64_t g = o[1] / mg;
    double acc = b ? b->data[o[1]] : 0.0;
    for (int64_t c = 0; c < cg; ++c) {
      for (int64_t r = 0; r < kh; ++r) {
        for (int64_t s = 0; s < kw; ++s) {
          const int64_t ih = o[2] * sh - pt + r * dh;
          const int64_t iw = o[3] * sw - pl + s * dw;
          if (ih < 0 || ih >= in_h || iw < 0 || iw >= in_w) continue;
          acc += static_cast<double>(
                     x.data[Ravel({o[0], g * cg + c, ih, iw}, x.shape)]) *
                 w.data[Ravel({o[1], c, r, s}, w.shape)];
        }
      }
    }
    y.data[i] = graph::Apply(node.attrs.activation, acc);
  }
  return y;
}

Tensor Pool(const Node& node, const Tensor& x, const Shape& y_shape) {
  Tensor y = Make(y_shape);
  const bool global = node.op == Op::kGlobalAveragePool;
  const int64_t in_h = x.shape[2], in_w = x.shape[3];
  const int64_t kh = global ? in_h : node.attrs.kernel[0];
  const int64_t kw = global ? in_w : node.attrs.kernel[1];
  const int64_t sh = global ? 1 : At(node.attrs.strides, 0, 1);
  const int64_t sw = global ? 1 : At(node.attrs.strides, 1, 1);
  const bool max = node.op == Op::kMaxPool;
  const int64_t dh = max ? At(node.attrs.dilations, 0, 1) : 1;
  const int64_t dw = max ? At(node.attrs.dilations, 1, 1) : 1;
  const int64_t pt = global ? 0 : At(node.attrs.pads, 0, 0);
  const int64_t pl = global ? 0 : At(node.attrs.pads, 1, 0);
  const int64_t pb = global ? 0 : At(node.attrs.pads, 2, 0);
  const int64_t pr = global ? 0 : At(node.attrs.pads, 3, 0);
  for (int64_t i = 0; i < y.size(); ++i) {
    const Shape o = Unravel(i, y_shape);
    double best = -std::numeric_limits<double>::infinity();
    double sum = 0.0;
    int64_t inside = 0, in_padded = 0;
    for (int64_t r = 0; r < kh; ++r) {
      for (int64_t s = 0; s < kw; ++s) {
        const int64_t ih = o[2] * sh - pt + r * dh;
        const int64_t iw = o[3] * sw - pl + s * dw;
        if (ih < in_h + pb && iw < in_w + pr) ++in_padded;
        if (ih < 0 || ih >= in_h || iw < 0 || iw >= in_w) continue;
        const double v = x.data[Ravel({o[0], o[1], ih, iw}, x.shape)];
        best = std::max(best, v);
        sum += v;
        ++inside;
      }
    }
    if (max) {
      y.data[i] = static_cast<float>(best);
    } else {
      const int64_t divisor = node.attrs.count_include_pad ? in_padded : inside;
      y.data[i] = static_cast<float>(sum / static_cast<double>(divisor));
    }
  }
  return y;
}

Tensor Gemm(const Node& node, const Tensor& a, const Tensor& b, const Tensor* c,
            const Shape& y_shape) {
  Tensor y = Make(y_shape);
  const graph::Attributes& at = node.attrs;
  const int64_t n = y_shape[0], m = y_shape[1];
  const int64_t k = at.trans_a ? a.shape[0] : a.shape[1];
  Shape c2 = c ? c->shape : Shape{};
  while (c2.size() < 2) c2.insert(c2.begin(), 1);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = at.trans_a ? a.data[p * n + i] : a.data[i * k + p];
        const double bv = at.trans_b ? b.data[j * k + p] : b.data[p * m + j];
        acc += av * bv;
      }
      double v = at.alpha * acc;
      if (c) {
        v += at.beta *
             c->data[(c2[0] == 1 ? 0 : i) * c2[1] + (c2[1] == 1 ? 0 : j)];
      }
      y.data[i * m + j] = graph::Apply(at.activation, v);
    }
  }
  return y;
}

Tensor MatMul(const Node& node, const Tensor& a, const Tensor& b,
              const Shape& y_shape) {
  Tensor y = Make(y_shape);
  const int64_t k = b.shape[0], m = b.shape[1];
  const int64_t rows = a.size() / k;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < m; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        acc += static_cast<double>(a.data[r * k + p]) * b.data[p * m + j];
      }
      y.data[r * m + j] = graph::Apply(node.attrs.activation, acc);
    }
  }
  return y;
}

Tensor Unary(const Node& node, const Tensor& x) {
  Tensor y = x;
  for (float& v : y.data) {
    switch (node.op) {
      case Op::kRelu:
        v = std::max(v, 0.0f);
        break;
      case Op::kClip:
        v = std::min(std::max(v, node.attrs.min), node.attrs.max);
        break;
      case Op::kLeakyRelu:
        v = v < 0 ? node.attrs.alpha * v : v;
        break;
      case Op::kSigmoid:
        v = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(v))));
        break;
      case Op::kHardSigmoid:
        v = std::min(1.0f,
                     std::max(0.0f, node.attrs.alpha * v + node.attrs.beta));
        break;
      case Op::kHardSwish:
        v = v * std::min(1.0f, std::max(0.0f, v / 6.0f + 0.5f));
        break;
      case Op::kSqrt:
        v = std::sqrt(v);
        break;
      case Op::kErf:
        v = std::erf(v);
        break;
      default:
        break;
    }
  }
  return y;
}

Tensor Reduce(const Node& node, const Tensor& x, const Shape& y_shape) {
  // Accumulate in double over every input index, into the keep-dims
  // position of its output; the output's row-major order is the same with
  // or without the reduced 1s.
  Shape kept = x.shape;
  for (int64_t a : node.attrs.axes) kept[a] = 1;
  const bool max = node.op == Op::kReduceMax;
  std::vector<double> acc(static_cast<size_t>(graph::NumElements(kept)),
                          max ? -std::numeric_limits<double>::infinity() : 0);
  for (int64_t i = 0; i < x.size(); ++i) {
    Shape o = Unravel(i, x.shape);
    for (int64_t a : node.attrs.axes) o[a] = 0;
    double& slot = acc[Ravel(o, kept)];
    slot =
        max ? std::max(slot, static_cast<double>(x.data[i])) : slot + x.data[i];
  }
  const double count = static_cast<double>(x.size()) /
                       static_cast<double>(std::max<size_t>(1, acc.size()));
  Tensor y = Make(y_shape);
  for (size_t i = 0; i < acc.size(); ++i) {
    y.data[i] = static_cast<float>(node.op == Op::kReduceMean ? acc[i] / count
                                                              : acc[i]);
  }
  return y;
}

Tensor BatchNorm(const Node& node, const std::vector<const Tensor*>& in) {
  Tensor y = *in[0];
  for (int64_t i = 0; i < y.size(); ++i) {
    const int64_t c = Unravel(i, y.shape)[1];
    const double scale = in[1]->data[c], bias = in[2]->data[c];
    const double mean = in[3]->data[c], var = in[4]->data[c];
    y.data[i] = static_cast<float>(
        (y.data[i] - mean) / std::sqrt(var + node.attrs.epsilon) * scale +
        bias);
  }
  return y;
}

Tensor Binary(const Node& node, const Tensor& a, const Tensor& b,
              const Shape& y_shape) {
  Tensor y = Make(y_shape);
  // Index of `t` for output index `o`: right-aligned, size-1 dims pinned.
  auto index = [&](const Tensor& t, const Shape& o) {
    Shape ti(t.shape.size());
    for (size_t d = 0; d < t.shape.size(); ++d) {
      const int64_t od = o[o.size() - t.shape.size() + d];
      ti[d] = t.shape[d] == 1 ? 0 : od;
    }
    return Ravel(ti, t.shape);
  };
  for (int64_t i = 0; i < y.size(); ++i) {
    const Shape o = Unravel(i, y_shape);
    const float av = a.data[index(a, o)], bv = b.data[index(b, o)];
    y.data[i] = node.op == Op::kAdd   ? av + bv
                : node.op == Op::kMul ? av * bv
                : node.op == Op::kSub ? av - bv
                : node.op == Op::kPow
                    ? static_cast<float>(std::pow(static_cast<double>(av), bv))
                    : av / bv;
  }
  return y;
}

Tensor Concat(const Node& node, const std::vector<const Tensor*>& in,
              const Shape& y_shape) {
  Tensor y = Make(y_shape);
  const size_t axis = node.attrs.axis;
  int64_t offset = 0;
  for (const Tensor* t : in) {
    for (int64_t i = 0; i < t->size(); ++i) {
      Shape o = Unravel(i, t->shape);
      o[axis] += offset;
      y.data[Ravel(o, y_shape)] = t->data[i];
    }
    offset += t->shape[axis];
  }
  return y;
}

Tensor Transpose(const Node& node, const Tensor& x, const Shape& y_shape) {
  Tensor y = Make(y_shape);
  Shape perm = node.attrs.perm;
  if (perm.empty()) {
    for (size_t d = x.shape.size(); d-- > 0;) perm.push_back(d);
  }
  for (int64_t i = 0; i < y.size(); ++i) {
    const Shape o = Unravel(i, y_shape);
    Shape xi(o.size());
    for (size_t d = 0; d < o.size(); ++d) xi[perm[d]] = o[d];
    y.data[i] = x.data[Ravel(xi, x.shape)];
  }
  return y;
}

Tensor Softmax(const Node& node, const Tensor& x) {
  Tensor y = x;
  const size_t axis = node.attrs.axis;
  const int64_t n = x.shape[axis];
  for (int64_t i = 0; i < x.size(); ++i) {
    Shape o = Unravel(i, x.shape);
    if (o[axis] != 0) continue;  // One pass per slice along the axis.
    std::vector<int64_t> at(n);
    double max = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      o[axis] = j;
      at[j] = Ravel(o, x.shape);
      max = std::max<double>(max, x.data[at[j]]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) sum += std::exp(x.data[at[j]] - max);
    for (int64_t j = 0; j < n; ++j) {
      y.data[at[j]] = static_cast<float>(std::exp(x.data[at[j]] - max) / sum);
    }
  }
  return y;
}

Tensor Pad(const Node& node, const Tensor& x, const Shape& y_shape) {
  Tensor y = Make(y_shape);
  const size_t rank = x.shape.size();
  for (int64_t i = 0; i < y.size(); ++i) {
    Shape xi = Unravel(i, y_shape);
    bool inside = true;
    for (size_t d = 0; d < rank; ++d) {
      xi[d] -= node.attrs.pads[d];
      inside = inside && xi[d] >= 0 && xi[d] < x.shape[d];
    }
    y.data[i] = inside ? x.data[Ravel(xi, x.shape)] : node.attrs.value;
  }
  return y;
}

Tensor Expand(const Tensor& x, const Shape& y_shape) {
  Tensor y = Make(y_shape);
  const size_t lead = y_shape.size() - x.shape.size();
  for (int64_t i = 0; i < y.size(); ++i) {
    const Shape yi = Unravel(i, y_shape);
    Shape xi(x.shape.size());
    for (size_t d = 0; d < xi.size(); ++d) {
      xi[d] = x.shape[d] == 1 ? 0 : yi[lead + d];
    }
    y.data[i] = x.data[Ravel(xi, x.shape)];
  }
  return y;
}

// ONNX's Resize, one output value at a time, in double.
Tensor Resize(const Node& node, const Tensor& x, const Shape& y_shape) {
  using Method = graph::ResizeMethod;
  const Method& m = node.attrs.resize;
  Tensor y = Make(y_shape);
  // The source coordinate of output index o along dim d.
  auto source = [&](size_t d, int64_t o) {
    const double in = static_cast<double>(x.shape[d]);
    const double scale = node.attrs.scales[d];
    const double resized = in * scale;  // ONNX's, before flooring.
    const double od = static_cast<double>(o);
    switch (m.coordinates) {
      case Method::Coordinates::kHalfPixel:
        return (od + 0.5) / scale - 0.5;
      case Method::Coordinates::kPytorchHalfPixel:
        return resized > 1 ? (od + 0.5) / scale - 0.5 : 0.0;
      case Method::Coordinates::kAlignCorners:
        return resized > 1 ? od * (in - 1) / (resized - 1) : 0.0;
      case Method::Coordinates::kAsymmetric:
        break;
    }
    return od / scale;
  };
  auto clamp = [&](size_t d, double v) {
    return std::min(std::max(v, 0.0), static_cast<double>(x.shape[d] - 1));
  };
  auto nearest = [&](double v) {
    const double f = std::floor(v);
    switch (m.rounding) {
      case Method::Rounding::kRoundPreferFloor:
        return v - f <= 0.5 ? f : f + 1;
      case Method::Rounding::kRoundPreferCeil:
        return v - f < 0.5 ? f : f + 1;
      case Method::Rounding::kFloor:
        return f;
      case Method::Rounding::kCeil:
        break;
    }
    return std::ceil(v);
  };
  for (int64_t i = 0; i < y.size(); ++i) {
    const Shape yi = Unravel(i, y_shape);
    const double sh = source(2, yi[2]);
    const double sw = source(3, yi[3]);
    auto at = [&](double h, double w) {
      const Shape xi = {yi[0], yi[1], static_cast<int64_t>(h),
                        static_cast<int64_t>(w)};
      return static_cast<double>(x.data[Ravel(xi, x.shape)]);
    };
    if (m.mode == Method::Mode::kNearest) {
      y.data[i] =
          static_cast<float>(at(clamp(2, nearest(sh)), clamp(3, nearest(sw))));
      continue;
    }
    const double h = clamp(2, sh);
    const double w = clamp(3, sw);
    const double h0 = std::floor(h);
    const double w0 = std::floor(w);
    const double h1 = clamp(2, h0 + 1);
    const double w1 = clamp(3, w0 + 1);
    const double fh = h - h0;
    const double fw = w - w0;
    y.data[i] = static_cast<float>(
        (1 - fh) * ((1 - fw) * at(h0, w0) + fw * at(h0, w1)) +
        fh * ((1 - fw) * at(h1, w0) + fw * at(h1, w1)));
  }
  return y;
}

Tensor LayerNorm(const Node& node, const std::vector<const Tensor*>& in) {
  const Tensor& x = *in[0];
  Tensor y = Make(x.shape);
  int64_t inner = 1;
  for (size_t d = node.attrs.axis; d < x.shape.size(); ++d) {
    inner *= x.shape[d];
  }
  for (int64_t r = 0; r < x.size() / inner; ++r) {
    const float* row = x.data.data() + r * inner;
    double mean = 0.0;
    for (int64_t k = 0; k < inner; ++k) mean += row[k];
    mean /= static_cast<double>(inner);
    double var = 0.0;
    for (int64_t k = 0; k < inner; ++k) {
      var += (row[k] - mean) * (row[k] - mean);
    }
    var /= static_cast<double>(inner);
    const double inv = 1.0 / std::sqrt(var + node.attrs.epsilon);
    for (int64_t k = 0; k < inner; ++k) {
      double v = (row[k] - mean) * inv * in[1]->data[k];
      if (in.size() > 2) v += in[2]->data[k];
      y.data[r * inner + k] = static_cast<float>(v);
    }
  }
  return y;
}

}  // namespace

absl::StatusOr<std::vector<Tensor>> ReferenceRun(
    const graph::Graph& graph, const std::vector<Tensor>& inputs) {
  if (inputs.size() != graph.inputs.size()) {
    return absl::InvalidArgumentError("wrong number of inputs");
  }
  std::map<std::string, Tensor> values = graph.constants;
  std::map<std::string, Shape> given;
  for (size_t i = 0; i < inputs.size(); ++i) {
    values[graph.inputs[i].name] = inputs[i];
    given[graph.inputs[i].name] = inputs[i].shape;
  }
  auto shapes = graph::InferShapes(graph, given);
  if (!shapes.ok()) return shapes.status();
  for (const Node& node : graph.nodes) {
    std::vector<const Tensor*> in;
    for (const std::string& name : node.inputs) in.push_back(&values.at(name));
    const Shape& y_shape = shapes->at(node.outputs[0]);
    const Tensor& x = *in[0];
    Tensor y;
    switch (node.op) {
      case Op::kConv:
        if (x.shape.size() != 4) return absl::UnimplementedError("conv rank");
        y = Conv(node, x, *in[1], in.size() > 2 ? in[2] : nullptr, y_shape);
        break;
      case Op::kGemm:
        y = Gemm(node, x, *in[1], in.size() > 2 ? in[2] : nullptr, y_shape);
        break;
      case Op::kMatMul:
        y = MatMul(node, x, *in[1], y_shape);
        break;
      case Op::kBatchNorm:
        y = BatchNorm(node, in);
        break;
      case Op::kReduceMean:
      case Op::kReduceSum:
      case Op::kReduceMax:
        y = Reduce(node, x, y_shape);
        break;
      case Op::kRelu:
      case Op::kClip:
      case Op::kLeakyRelu:
      case Op::kSigmoid:
      case Op::kHardSigmoid:
      case Op::kHardSwish:
      case Op::kSqrt:
      case Op::kErf:
        y = Unary(node, x);
        break;
      case Op::kMaxPool:
      case Op::kAveragePool:
      case Op::kGlobalAveragePool:
        if (x.shape.size() != 4) return absl::UnimplementedError("pool rank");
        y = Pool(node, x, y_shape);
        break;
      case Op::kAdd:
      case Op::kMul:
      case Op::kSub:
      case Op::kDiv:
      case Op::kPow:
        y = Binary(node, x, *in[1], y_shape);
        break;
      case Op::kConcat:
        y = Concat(node, in, y_shape);
        break;
      case Op::kFlatten:
      case Op::kReshape:
      case Op::kIdentity:
        y = x;
        y.shape = y_shape;
        break;
      case Op::kTranspose:
        y = Transpose(node, x, y_shape);
        break;
      case Op::kSoftmax:
        y = Softmax(node, x);
        break;
      case Op::kPad:
        y = Pad(node, x, y_shape);
        break;
      case Op::kExpand:
        y = Expand(x, y_shape);
        break;
      case Op::kResize:
        y = Resize(node, x, y_shape);
        break;
      case Op::kLayerNorm:
        y = LayerNorm(node, in);
        break;
      case Op::kGelu:
        y = x;
        for (float& v : y.data) {
          const double d = v;
          v = static_cast<float>(0.5 * d *
                                 (1.0 + std::erf(d / std::sqrt(2.0))));
        }
        break;
    }
    values[node.outputs[0]] = std::move(y);
  }
  std::vector<Tensor> outputs;
  for (const graph::ValueInfo& output : graph.outputs) {
    outputs.push_back(values.at(output.name));
  }
  return outputs;
}

}  // namespace esb::runtime
