#include "core/runtime/plan.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/graph/shapes.h"
#include "core/runtime/arena.h"
#include "core/runtime/lower.h"

namespace esb::runtime::internal {

absl::StatusOr<std::shared_ptr<const WeightCache::Packed>> WeightCache::Get(
    int node_index, const dnnl::memory::desc& desc,
    const std::function<dnnl::memory()>& source, const dnnl::engine& engine,
    dnnl::stream& stream) {
  std::vector<std::shared_ptr<const Packed>>& packed = packed_[node_index];
  for (const auto& p : packed) {
    if (p->desc == desc) return p;
  }
  absl::StatusOr<AlignedBuffer> storage = AlignedBuffer::Allocate(
      desc.get_size(), absl::StrCat("packed weights of node ", node_index));
  if (!storage.ok()) return storage.status();
  auto p = std::make_shared<Packed>(Packed{desc, *std::move(storage)});
  dnnl::memory src = source();
  dnnl::memory dst(desc, engine, p->storage.data());
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  packed.push_back(p);
  return p;
}

absl::StatusOr<std::unique_ptr<Plan>> Plan::Build(
    const graph::Graph& graph,
    const std::vector<std::vector<int64_t>>& input_shapes,
    const dnnl::engine& engine, dnnl::stream& stream, WeightCache& weights,
    const QuantizedLayers* layers) {
  std::map<std::string, std::vector<int64_t>> given;
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    given[graph.inputs[i].name] = input_shapes[i];
  }
  auto shapes = graph::InferShapes(graph, given);
  if (!shapes.ok()) return shapes.status();
  for (const graph::Node& node : graph.nodes) {
    for (const std::string& name : node.outputs) {
      const std::vector<int64_t>& shape = shapes->at(name);
      if (graph::NumElements(shape) == 0) {
        return absl::UnimplementedError(absl::StrCat(
            "node '", node.name, "' (", graph::OpName(node.op), "): output '",
            name, "' has shape ", graph::ShapeToString(shape),
            "; empty tensors are not supported"));
      }
    }
  }
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    if (graph::NumElements(input_shapes[i]) == 0) {
      return absl::UnimplementedError(
          absl::StrCat("input '", graph.inputs[i].name, "' has shape ",
                       graph::ShapeToString(input_shapes[i]),
                       "; empty tensors are not supported"));
    }
  }

  std::unique_ptr<Plan> plan(new Plan());
  PlanBuilder builder(graph, *shapes, engine, stream, weights, layers, *plan);
  builder.AddInputs();
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const graph::Node& node = graph.nodes[i];
    absl::Status status = CallDnnl(
        absl::StrCat("node '", node.name, "' (", graph::OpName(node.op), ")"),
        [&] { return builder.Lower(static_cast<int>(i)); });
    if (!status.ok()) return status;
  }
  absl::Status status = CallDnnl("graph outputs", [&] {
    builder.AddOutputs();
    return plan->Bind(engine);
  });
  if (!status.ok()) return status;
  return plan;
}

absl::Status Plan::Bind(const dnnl::engine& engine) {
  // Lifetimes of arena buffers, in steps.
  std::vector<BufferLifetime> lifetimes;
  std::vector<int> lifetime_of(buffers_.size(), -1);
  for (size_t s = 0; s < steps_.size(); ++s) {
    for (const Arg& arg : steps_[s].args) {
      if (buffers_[arg.buffer].kind != Buffer::Kind::kArena) continue;
      int& l = lifetime_of[arg.buffer];
      if (l < 0) {
        l = static_cast<int>(lifetimes.size());
        lifetimes.push_back({buffers_[arg.buffer].bytes, static_cast<int>(s),
                             static_cast<int>(s)});
      }
      lifetimes[l].last_step = static_cast<int>(s);
    }
  }
  const ArenaPlan layout = PlanArena(lifetimes);
  arena_bytes_ = layout.total_bytes;
  absl::StatusOr<AlignedBuffer> arena =
      AlignedBuffer::Allocate(layout.total_bytes, "the activation arena");
  if (!arena.ok()) return arena.status();
  arena_ = std::make_unique<AlignedBuffer>(*std::move(arena));
  for (size_t b = 0; b < buffers_.size(); ++b) {
    if (lifetime_of[b] >= 0) {
      buffers_[b].data =
          arena_->data() + layout.offsets[lifetime_of[b]] / sizeof(float);
    }
  }
  // Inputs and outputs get their data handles at each Execute.
  for (Step& step : steps_) {
    if (step.loop) continue;
    for (const Arg& arg : step.args) {
      step.memories.emplace(
          arg.arg, dnnl::memory(arg.desc, engine, buffers_[arg.buffer].data));
    }
  }
  return absl::OkStatus();
}

float* Plan::Data(int buffer, absl::Span<const float* const> inputs,
                  absl::Span<float* const> outputs) const {
  const Buffer& b = buffers_[buffer];
  switch (b.kind) {
    case Buffer::Kind::kInput:
      // Inputs are only read; oneDNN's memory takes a mutable handle.
      return const_cast<float*>(inputs[b.index]);
    case Buffer::Kind::kOutput:
      return outputs[b.index];
    default:
      return b.data;
  }
}

absl::Status Plan::Execute(absl::Span<const float* const> inputs,
                           absl::Span<float* const> outputs,
                           dnnl::stream& stream) {
  std::vector<float*> pointers;
  for (Step& step : steps_) {
    absl::Status status = CallDnnl(step.context, [&] {
      if (step.loop) {
        stream.wait();  // Loops read what earlier primitives wrote.
        pointers.clear();
        for (const Arg& arg : step.args) {
          pointers.push_back(Data(arg.buffer, inputs, outputs));
        }
        step.loop(pointers);
        return absl::OkStatus();
      }
      for (const Arg& arg : step.args) {
        const Buffer::Kind kind = buffers_[arg.buffer].kind;
        if (kind == Buffer::Kind::kInput || kind == Buffer::Kind::kOutput) {
          step.memories.at(arg.arg).set_data_handle(
              Data(arg.buffer, inputs, outputs));
        }
      }
      step.primitive.execute(stream, step.memories);
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
  }
  return CallDnnl("stream", [&] {
    stream.wait();
    return absl::OkStatus();
  });
}

}  // namespace esb::runtime::internal
