#include "fpga_agent/inference_service.h"

#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fpga_agent/infer_codec.h"

namespace esb::agent {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string{status.message()});
}

// A unary reply that is ready at once.
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context,
                                const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// One ModelStreamInfer call. Requests are read one after another and queued
// on their batchers; responses are written in request order, one write at a
// time. Reading pauses while kStreamWindow responses are outstanding. The
// call finishes once the client has closed its side and every response is
// written (or the client went away and every queued request completed:
// nothing refers to the reactor after Finish).
class StreamReactor final
    : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                     inference::ModelStreamInferResponse> {
 public:
  explicit StreamReactor(InferenceServiceImpl* service) : service_(service) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
      }
      Advance();
      return;
    }
    auto slot = std::make_shared<Slot>();
    {
      absl::MutexLock lock(&mu_);
      slots_.push_back(slot);
    }
    service_->Infer(
        request_,
        [this, slot](absl::StatusOr<inference::ModelInferResponse> result) {
          {
            absl::MutexLock lock(&mu_);
            if (result.ok()) {
              *slot->response.mutable_infer_response() = *std::move(result);
            } else {
              slot->response.set_error_message(
                  std::string{result.status().message()});
            }
            slot->done = true;
          }
          Advance();
        });
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      if (static_cast<int>(slots_.size()) <
          InferenceServiceImpl::kStreamWindow) {
        read_more = true;
      } else {
        read_paused_ = true;
      }
    }
    if (read_more) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    bool resume_read = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      slots_.pop_front();
      if (!ok) broken_ = true;
      if (read_paused_ && !broken_ &&
          static_cast<int>(slots_.size()) <
              InferenceServiceImpl::kStreamWindow) {
        read_paused_ = false;
        resume_read = true;
      }
    }
    if (resume_read) StartRead(&request_);
    Advance();
  }

  void OnDone() override { delete this; }

 private:
  struct Slot {
    bool done = false;
    inference::ModelStreamInferResponse response;
  };

  // Writes the next finished response, or finishes the call when nothing
  // is left to do. Called after every state change.
  void Advance() {
    const inference::ModelStreamInferResponse* to_write = nullptr;
    bool finish = false;
    bool broken = false;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      // After a failed write nothing more is sent; completed slots go.
      while (broken_ && !slots_.empty() && slots_.front()->done) {
        slots_.pop_front();
      }
      if (!slots_.empty() && slots_.front()->done) {
        writing_ = true;
        to_write = &slots_.front()->response;
      } else if (slots_.empty() && (reads_done_ || (broken_ && read_paused_))) {
        finished_ = true;
        finish = true;
        broken = broken_;
      }
    }
    if (to_write != nullptr) {
      StartWrite(to_write);
    } else if (finish) {
      Finish(broken ? grpc::Status(grpc::StatusCode::CANCELLED,
                                   "the client went away")
                    : grpc::Status::OK);
    }
  }

  InferenceServiceImpl* const service_;
  inference::ModelInferRequest request_;  // The read in progress.
  absl::Mutex mu_;
  std::deque<std::shared_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

const char* AgentVersion() { return ESB_AGENT_VERSION; }

void InferenceServiceImpl::Infer(const inference::ModelInferRequest& request,
                                 InferDone done) {
  const absl::Time arrived = absl::Now();
  const std::string& model_name = request.model_name();
  auto refuse = [&](const absl::Status& status,
                    const std::string& metrics_model) {
    if (metrics_ != nullptr) {
      metrics_->Request(metrics_model, absl::StatusCodeToString(status.code()),
                        0, 0, 0);
    }
    done(status);
  };
  if (model_name.empty()) {
    // Not labelled with what the client sent: labels stay bounded.
    return refuse(absl::InvalidArgumentError("model_name is empty"), "");
  }
  absl::StatusOr<int64_t> version = ParseModelVersion(request.model_version());
  if (!version.ok()) return refuse(version.status(), "");
  absl::StatusOr<std::shared_ptr<const ServedModel>> model =
      repository_->Get(model_name, *version);
  if (!model.ok()) return refuse(model.status(), "");
  const ModelSignature& signature = *(*model)->signature;
  absl::StatusOr<std::vector<int>> selected = SelectOutputs(request, signature);
  if (!selected.ok()) return refuse(selected.status(), model_name);
  absl::StatusOr<graph::Tensor> input = DecodeInput(request, signature);
  if (!input.ok()) return refuse(input.status(), model_name);

  // What the response needs once the batch has run.
  auto reply = std::make_shared<inference::ModelInferResponse>();
  reply->set_model_name(model_name);
  reply->set_model_version(absl::StrCat((*model)->version));
  reply->set_id(request.id());
  inference::ModelInferRequest shape_of_request;  // Outputs and encoding.
  *shape_of_request.mutable_outputs() = request.outputs();
  if (request.raw_input_contents_size() > 0) {
    shape_of_request.add_raw_input_contents();
  }
  absl::Status queued = (*model)->batcher->Submit(
      // The callback holds the signature, not the model: a model unloaded
      // meanwhile is destroyed (its batcher drained) by whoever drops the
      // last reference, never on its own batcher's thread.
      *std::move(input),
      [this, signature = (*model)->signature, selected = *std::move(selected),
       reply, shape_of_request = std::move(shape_of_request), arrived,
       done](absl::StatusOr<BatchResult> result) {
        if (!result.ok()) {
          if (metrics_ != nullptr) {
            metrics_->Request(signature->model,
                              absl::StatusCodeToString(result.status().code()),
                              0, 0, 0);
          }
          done(result.status());
          return;
        }
        EncodeOutputs(shape_of_request, *signature, selected, result->outputs,
                      reply.get());
        if (metrics_ != nullptr) {
          metrics_->Request(signature->model, "OK", result->queue_seconds,
                            result->compute_seconds,
                            absl::ToDoubleSeconds(absl::Now() - arrived));
        }
        done(std::move(*reply));
      });
  if (!queued.ok()) refuse(queued, model_name);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerLive(
    grpc::CallbackServerContext* context,
    const inference::ServerLiveRequest* request,
    inference::ServerLiveResponse* response) {
  response->set_live(true);
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerReady(
    grpc::CallbackServerContext* context,
    const inference::ServerReadyRequest* request,
    inference::ServerReadyResponse* response) {
  response->set_ready(backend_->Status().healthy);
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelReady(
    grpc::CallbackServerContext* context,
    const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  absl::StatusOr<int64_t> version = ParseModelVersion(request->version());
  if (!version.ok()) return Reply(context, ToGrpc(version.status()));
  response->set_ready(repository_->Get(request->name(), *version).ok());
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerMetadata(
    grpc::CallbackServerContext* context,
    const inference::ServerMetadataRequest* request,
    inference::ServerMetadataResponse* response) {
  response->set_name(kAgentName);
  response->set_version(AgentVersion());
  // Beyond the core protocol: models are deployed and bitstreams loaded
  // through esb.v1.AgentService.
  response->add_extensions("esb.v1.AgentService");
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelMetadata(
    grpc::CallbackServerContext* context,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  absl::StatusOr<int64_t> version = ParseModelVersion(request->version());
  if (!version.ok()) return Reply(context, ToGrpc(version.status()));
  absl::StatusOr<std::shared_ptr<const ServedModel>> model =
      repository_->Get(request->name(), *version);
  if (!model.ok()) return Reply(context, ToGrpc(model.status()));
  const ModelSignature& s = *(*model)->signature;
  response->set_name((*model)->name);
  response->add_versions(absl::StrCat((*model)->version));
  response->set_platform("esb");
  auto add = [](const TensorSpec& spec, auto* out) {
    out->set_name(spec.name);
    out->set_datatype("FP32");
    for (int64_t d : spec.shape) out->add_shape(d);
  };
  add(s.input, response->add_inputs());
  for (const TensorSpec& o : s.outputs) add(o, response->add_outputs());
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelInfer(
    grpc::CallbackServerContext* context,
    const inference::ModelInferRequest* request,
    inference::ModelInferResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Infer(*request, [reactor, response](
                      absl::StatusOr<inference::ModelInferResponse> result) {
    if (!result.ok()) {
      reactor->Finish(ToGrpc(result.status()));
      return;
    }
    *response = *std::move(result);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerBidiReactor<inference::ModelInferRequest,
                        inference::ModelStreamInferResponse>*
InferenceServiceImpl::ModelStreamInfer(grpc::CallbackServerContext* context) {
  return new StreamReactor(this);
}

}  // namespace esb::agent
