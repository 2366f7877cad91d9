#!/usr/bin/python3
"""A Python gRPC client against a real esb-agent: every KServe v2 RPC.

The client is what a KServe/Triton user has: grpcio (Debian python3-grpcio)
and protobuf messages generated from the project's .proto files at test
time by the system protoc. It calls the methods by their wire names
(channel.unary_unary & co), so no generated gRPC stubs are needed, which
also shows the service is reachable by its protocol name and path alone.

Run by ctest:
  agent_python_client_test.py --agent esb-agent --package-tool \
      agent_demo_package --protoc protoc --proto-dir proto/
"""

import argparse
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

ARGS = None
PB = None  # inference.grpc_service_pb2
AGENT_PB = None  # esb.v1.agent_pb2


def generate_messages(protoc, proto_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run(
        [protoc, f"-I{proto_dir}", f"--python_out={out_dir}",
         "inference/grpc_service.proto", "esb/v1/agent.proto"],
        check=True)
    sys.path.insert(0, out_dir)
    global PB, AGENT_PB
    from inference import grpc_service_pb2
    from esb.v1 import agent_pb2
    PB, AGENT_PB = grpc_service_pb2, agent_pb2


class Agent:
    """An esb-agent process on a free loopback port, stopped by its pid."""

    def __init__(self, model_dir, log_path):
        self.log = open(log_path, "w+")
        self.proc = subprocess.Popen(
            [ARGS.agent, "--backend", "sim", "--listen", "127.0.0.1:0",
             "--model-dir", model_dir, "--max-batch", "4"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.address = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"esb-agent listening on (\S+)", line)
            if m:
                self.address = m.group(1)
                break
        if self.address is None:
            self.stop()
            raise RuntimeError("esb-agent did not start: " + self.read_log())

    def read_log(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def unary(channel, service, method, request_type, response_type):
    return channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString)


class KServeClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="agent_python_")
        d = cls.tmp.name
        generate_messages(ARGS.protoc, ARGS.proto_dir, os.path.join(d, "py"))
        subprocess.run([ARGS.package_tool, d], check=True)
        read = lambda name: open(os.path.join(d, name), "rb").read()
        cls.esbm = read("model.esbm")
        cls.images = read("images.f32")
        cls.pixels = read("pixels.u8")
        cls.expected = read("expected.f32")
        cls.input_name, cls.output_name = (
            read("names.txt").decode().split())
        cls.agent = Agent(os.path.join(d, "models"),
                          os.path.join(d, "agent.log"))
        cls.channel = grpc.insecure_channel(cls.agent.address)
        svc = "inference.GRPCInferenceService"
        cls.infer = unary(cls.channel, svc, "ModelInfer",
                          PB.ModelInferRequest, PB.ModelInferResponse)
        cls.stream = cls.channel.stream_stream(
            f"/{svc}/ModelStreamInfer",
            request_serializer=PB.ModelInferRequest.SerializeToString,
            response_deserializer=PB.ModelStreamInferResponse.FromString)
        deploy = cls.channel.stream_unary(
            "/esb.v1.AgentService/DeployModel",
            request_serializer=AGENT_PB.DeployModelRequest.SerializeToString,
            response_deserializer=AGENT_PB.DeployModelResponse.FromString)
        cls.deployed = deploy(cls.deploy_messages("fashion"), timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.agent.stop()
        cls.tmp.cleanup()
        assert code == 0, f"esb-agent exited with {code}"

    @classmethod
    def deploy_messages(cls, name):
        import hashlib
        chunk = 32 << 10
        first = True
        for at in range(0, len(cls.esbm), chunk):
            m = AGENT_PB.DeployModelRequest(data=cls.esbm[at:at + chunk])
            if first:
                m.name = name
                m.sha256 = hashlib.sha256(cls.esbm).hexdigest()
                m.size = len(cls.esbm)
                first = False
            yield m

    def request(self, n=4, datatype="FP32", raw=True, model="fashion"):
        r = PB.ModelInferRequest(model_name=model, id="py-1")
        t = r.inputs.add(name=self.input_name, datatype=datatype,
                         shape=[n, 1, 28, 28])
        if datatype == "UINT8":
            data = self.pixels[:n * 784]
            if raw:
                r.raw_input_contents.append(data)
            else:
                t.contents.uint_contents.extend(data)
        else:
            data = self.images[:n * 784 * 4]
            if raw:
                r.raw_input_contents.append(data)
            else:
                t.contents.fp32_contents.extend(
                    struct.unpack(f"<{n * 784}f", data))
        return r

    def expected_floats(self, n=4):
        return list(struct.unpack(f"<{n * 10}f", self.expected[:n * 40]))

    def logits(self, response):
        if response.raw_output_contents:
            blob = response.raw_output_contents[0]
            return list(struct.unpack(f"<{len(blob) // 4}f", blob))
        return list(response.outputs[0].contents.fp32_contents)

    def test_deploy_reply(self):
        self.assertEqual(self.deployed.name, "fashion")
        self.assertEqual(self.deployed.version, 1)
        self.assertIn("sim:", self.deployed.description)

    def test_server_live_ready_and_metadata(self):
        svc = "inference.GRPCInferenceService"
        live = unary(self.channel, svc, "ServerLive", PB.ServerLiveRequest,
                     PB.ServerLiveResponse)(PB.ServerLiveRequest(), timeout=10)
        self.assertTrue(live.live)
        ready = unary(self.channel, svc, "ServerReady", PB.ServerReadyRequest,
                      PB.ServerReadyResponse)(PB.ServerReadyRequest(),
                                              timeout=10)
        self.assertTrue(ready.ready)
        meta = unary(self.channel, svc, "ServerMetadata",
                     PB.ServerMetadataRequest, PB.ServerMetadataResponse)(
                         PB.ServerMetadataRequest(), timeout=10)
        self.assertEqual(meta.name, "esb-agent")
        self.assertRegex(meta.version, r"^\d+\.\d+\.\d+$")

    def test_model_ready_and_metadata(self):
        svc = "inference.GRPCInferenceService"
        model_ready = unary(self.channel, svc, "ModelReady",
                            PB.ModelReadyRequest, PB.ModelReadyResponse)
        self.assertTrue(model_ready(PB.ModelReadyRequest(name="fashion"),
                                    timeout=10).ready)
        self.assertTrue(model_ready(
            PB.ModelReadyRequest(name="fashion", version="1"),
            timeout=10).ready)
        self.assertFalse(model_ready(PB.ModelReadyRequest(name="other"),
                                     timeout=10).ready)
        metadata = unary(self.channel, svc, "ModelMetadata",
                         PB.ModelMetadataRequest, PB.ModelMetadataResponse)
        meta = metadata(PB.ModelMetadataRequest(name="fashion"), timeout=10)
        self.assertEqual(meta.platform, "esb")
        self.assertEqual(list(meta.versions), ["1"])
        self.assertEqual(meta.inputs[0].name, self.input_name)
        self.assertEqual(meta.inputs[0].datatype, "FP32")
        self.assertEqual(list(meta.inputs[0].shape), [-1, 1, 28, 28])
        self.assertEqual(meta.outputs[0].name, self.output_name)
        self.assertEqual(list(meta.outputs[0].shape), [-1, 10])
        with self.assertRaises(grpc.RpcError) as e:
            metadata(PB.ModelMetadataRequest(name="other"), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_model_infer_every_encoding_gives_the_executors_logits(self):
        expected = self.expected_floats()
        for datatype in ("FP32", "UINT8"):
            for raw in (True, False):
                with self.subTest(datatype=datatype, raw=raw):
                    response = self.infer(self.request(4, datatype, raw),
                                          timeout=30)
                    self.assertEqual(response.model_name, "fashion")
                    self.assertEqual(response.model_version, "1")
                    self.assertEqual(response.id, "py-1")
                    self.assertEqual(response.outputs[0].name,
                                     self.output_name)
                    self.assertEqual(response.outputs[0].datatype, "FP32")
                    self.assertEqual(list(response.outputs[0].shape), [4, 10])
                    self.assertEqual(len(response.raw_output_contents),
                                     1 if raw else 0)
                    self.assertEqual(self.logits(response), expected)

    def test_model_infer_errors(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.infer(self.request(model="missing"), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        bad = self.request(1)
        bad.inputs[0].shape[:] = [1, 784]
        with self.assertRaises(grpc.RpcError) as e:
            self.infer(bad, timeout=10)
        self.assertEqual(e.exception.code(),
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("expected [-1,1,28,28]", e.exception.details())
        unknown = self.request(1)
        unknown.outputs.add(name="nope")
        with self.assertRaises(grpc.RpcError) as e:
            self.infer(unknown, timeout=10)
        self.assertEqual(e.exception.code(),
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("output 'nope' is not an output", e.exception.details())

    def test_model_stream_infer(self):
        requests = []
        for i in range(4):
            r = self.request(1, "FP32", raw=i % 2 == 0)
            r.id = f"s-{i}"
            requests.append(r)
        requests[2].inputs[0].datatype = "BYTES"
        responses = list(self.stream(iter(requests), timeout=30))
        self.assertEqual(len(responses), 4)
        for i, response in enumerate(responses):
            if i == 2:
                self.assertIn("datatype 'BYTES'", response.error_message)
                continue
            self.assertEqual(response.error_message, "")
            self.assertEqual(response.infer_response.id, f"s-{i}")
            self.assertEqual(self.logits(response.infer_response),
                             self.expected_floats(1))


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", required=True)
    parser.add_argument("--package-tool", required=True)
    parser.add_argument("--protoc", required=True)
    parser.add_argument("--proto-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
