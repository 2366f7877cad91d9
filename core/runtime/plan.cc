#include "core/runtime/plan.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/graph/shapes.h"
#include "core/runtime/arena.h"
#include "core/runtime/lower.h"
#include "oneapi/dnnl/dnnl_debug.h"

namespace esb::runtime::internal {

absl::StatusOr<std::shared_ptr<const WeightCache::Packed>> WeightCache::Get(
    int node_index, const dnnl::memory::desc& desc,
    const std::function<dnnl::memory()>& source, const dnnl::engine& engine,
    dnnl::stream& stream) {
  std::vector<std::shared_ptr<const Packed>>& packed = packed_[node_index];
  for (const auto& p : packed) {
    if (p->desc == desc) return p;
  }
  auto storage = AlignedBuffer::Create(desc.get_size(), "packed weights");
  if (!storage.ok()) return storage.status();
  auto p = std::make_shared<Packed>(Packed{desc, *std::move(storage)});
  dnnl::memory src = source();
  dnnl::memory dst(desc, engine, p->storage->data());
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  packed.push_back(p);
  return p;
}

namespace {

// total += add, or false when that would exceed `limit`.
bool AddWithin(size_t& total, size_t add, size_t limit) {
  if (add > limit || total > limit - add) return false;
  total += add;
  return true;
}

// Bytes of a float tensor of `shape`, or false past `limit`.
bool TensorBytesWithin(const std::vector<int64_t>& shape, size_t limit,
                       size_t& bytes) {
  bytes = sizeof(float);
  for (int64_t d : shape) {
    const size_t u = static_cast<size_t>(d);
    if (u != 0 && bytes > limit / u) return false;
    bytes *= u;
  }
  return bytes <= limit;
}

std::string ShapesToString(const std::vector<std::vector<int64_t>>& shapes) {
  std::string out;
  for (const auto& shape : shapes) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", graph::ShapeToString(shape));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Plan>> Plan::Build(
    const graph::Graph& graph,
    const std::vector<std::vector<int64_t>>& input_shapes,
    const dnnl::engine& engine, dnnl::stream& stream, WeightCache& weights,
    const PlanLimits& limits, const QuantizedLayers* layers) {
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

  std::unique_ptr<Plan> plan(new Plan(engine, limits));
  PlanBuilder builder(graph, *shapes, engine, stream, weights, layers, *plan);
  builder.AddInputs();
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const graph::Node& node = graph.nodes[i];
    absl::Status status = CallDnnl(
        absl::StrCat("node '", node.name, "' (", graph::OpName(node.op), ")"),
        [&] { return builder.Lower(static_cast<int>(i)); });
    if (status.ok()) status = builder.status();
    if (!status.ok()) return status;
  }
  absl::Status status = CallDnnl("graph outputs", [&] {
    builder.AddOutputs();
    return builder.status();
  });
  if (!status.ok()) return status;
  status = plan->Layout(
      absl::StrCat("plan for input shapes ", ShapesToString(input_shapes)));
  if (!status.ok()) return status;
  return plan;
}

Plan::~Plan() = default;

int Plan::idle_runs() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(idle_.size());
}

std::vector<std::string> Plan::step_kinds() const {
  std::vector<std::string> kinds;
  for (const Step& step : steps_) {
    if (step.loop) {
      kinds.push_back(absl::StrCat(step.context, ": loop"));
      continue;
    }
    const char* impl = nullptr;
    if (dnnl_primitive_desc_query(step.primitive.get_primitive_desc(),
                                  dnnl_query_impl_info_str, 0,
                                  &impl) != dnnl_success ||
        impl == nullptr) {
      impl = "unknown";
    }
    kinds.push_back(absl::StrCat(
        step.context, ": ",
        dnnl_prim_kind2str(
            static_cast<dnnl_primitive_kind_t>(step.primitive.get_kind())),
        " (", impl, ")"));
  }
  return kinds;
}

absl::Status Plan::Layout(const std::string& what) {
  // Lifetimes of arena buffers, in steps.
  std::vector<BufferLifetime> lifetimes;
  std::vector<int> lifetime_of(buffers_.size(), -1);
  for (size_t s = 0; s < steps_.size(); ++s) {
    for (const Arg& arg : steps_[s].args) {
      const Buffer& buffer = buffers_[arg.buffer];
      if (buffer.kind != Buffer::Kind::kArena) continue;
      if (buffer.bytes > limits_.max_arena_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(steps_[s].context, ": a value of ", buffer.bytes,
                         " bytes is over the arena limit of ",
                         limits_.max_arena_bytes, " bytes (", what, ")"));
      }
      int& l = lifetime_of[arg.buffer];
      if (l < 0) {
        l = static_cast<int>(lifetimes.size());
        lifetimes.push_back(
            {buffer.bytes, static_cast<int>(s), static_cast<int>(s)});
      }
      lifetimes[l].last_step = static_cast<int>(s);
    }
  }
  absl::StatusOr<ArenaPlan> layout =
      PlanArena(lifetimes, limits_.max_arena_bytes);
  if (!layout.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", layout.status().message()));
  }
  arena_bytes_ = layout->total_bytes;
  for (size_t b = 0; b < buffers_.size(); ++b) {
    if (lifetime_of[b] >= 0) {
      buffers_[b].offset = layout->offsets[lifetime_of[b]];
    }
  }

  // The plan's total: its arena, its outputs, the weights and constants it
  // holds.
  const size_t limit = limits_.max_plan_bytes;
  size_t total = 0;
  bool within = AddWithin(total, arena_bytes_, limit);
  for (const auto& shape : output_shapes_) {
    size_t bytes = 0;
    within = within && TensorBytesWithin(shape, limit, bytes) &&
             AddWithin(total, bytes, limit);
  }
  for (const auto& packed : packed_) {
    within = within && AddWithin(total, packed->storage->bytes(), limit);
  }
  for (const auto& owned : owned_) {
    within = within && AddWithin(total, owned->bytes(), limit);
  }
  if (!within) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": the arena (", arena_bytes_,
        " bytes), outputs, weights and constants are over the plan limit of ",
        limit, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Plan::Run>> Plan::TakeRun() {
  {
    absl::MutexLock lock(&mu_, absl::Condition(this, &Plan::SlotFree));
    ++in_use_;
    if (!idle_.empty()) {
      std::unique_ptr<Run> run = std::move(idle_.back());
      idle_.pop_back();
      return run;
    }
  }
  auto run = std::make_unique<Run>();
  auto arena = AlignedBuffer::Create(arena_bytes_, "plan arena");
  if (!arena.ok()) {
    ReleaseRun(nullptr, false);
    return arena.status();
  }
  run->arena = *std::move(arena);
  absl::Status status = CallDnnl("binding the plan's memory", [&] {
    run->stream = dnnl::stream(engine_);
    run->memories.resize(steps_.size());
    for (size_t s = 0; s < steps_.size(); ++s) {
      if (steps_[s].loop) continue;
      for (const Arg& arg : steps_[s].args) {
        run->memories[s].emplace(
            arg.arg,
            dnnl::memory(arg.desc, engine_,
                         Data(arg.buffer, run->arena->data(), {}, {})));
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) {
    ReleaseRun(nullptr, false);
    return status;
  }
  return run;
}

void Plan::ReleaseRun(std::unique_ptr<Run> run, bool reuse) {
  absl::MutexLock lock(&mu_);
  --in_use_;
  if (reuse && static_cast<int>(idle_.size()) < limits_.max_idle_runs) {
    idle_.push_back(std::move(run));
  }
}

float* Plan::Data(int buffer, float* arena,
                  absl::Span<const float* const> inputs,
                  absl::Span<float* const> outputs) const {
  const Buffer& b = buffers_[buffer];
  switch (b.kind) {
    case Buffer::Kind::kInput:
      // Inputs are only read; oneDNN's memory takes a mutable handle.
      return inputs.empty() ? nullptr : const_cast<float*>(inputs[b.index]);
    case Buffer::Kind::kOutput:
      return outputs.empty() ? nullptr : outputs[b.index];
    case Buffer::Kind::kArena:
      return reinterpret_cast<float*>(reinterpret_cast<char*>(arena) +
                                      b.offset);
    case Buffer::Kind::kConstant:
      return b.data;
  }
  return nullptr;
}

absl::Status Plan::Execute(absl::Span<const float* const> inputs,
                           absl::Span<float* const> outputs) {
  absl::StatusOr<std::unique_ptr<Run>> run = TakeRun();
  if (!run.ok()) return run.status();
  absl::Status status = ExecuteOn(**run, inputs, outputs);
  // A failed run may have left work on its stream: not reused.
  ReleaseRun(*std::move(run), status.ok());
  return status;
}

absl::Status Plan::ExecuteOn(Run& run, absl::Span<const float* const> inputs,
                             absl::Span<float* const> outputs) const {
  std::vector<float*> pointers;
  float* const arena = run.arena->data();
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& step = steps_[s];
    absl::Status status = CallDnnl(step.context, [&] {
      if (step.loop) {
        run.stream.wait();  // Loops read what earlier primitives wrote.
        pointers.clear();
        for (const Arg& arg : step.args) {
          pointers.push_back(Data(arg.buffer, arena, inputs, outputs));
        }
        step.loop(pointers);
        return absl::OkStatus();
      }
      std::unordered_map<int, dnnl::memory>& memories = run.memories[s];
      for (const Arg& arg : step.args) {
        const Buffer::Kind kind = buffers_[arg.buffer].kind;
        if (kind == Buffer::Kind::kInput || kind == Buffer::Kind::kOutput) {
          memories.at(arg.arg).set_data_handle(
              Data(arg.buffer, arena, inputs, outputs));
        }
      }
      step.primitive.execute(run.stream, memories);
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
  }
  return CallDnnl("stream", [&] {
    run.stream.wait();
    return absl::OkStatus();
  });
}

}  // namespace esb::runtime::internal
