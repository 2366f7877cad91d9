#!/usr/bin/python3
"""The dashboards and alerts against a real Prometheus scraping real
processes.

Starts esb-server, esb-worker, esb-agent (sim backend) and Prometheus on
loopback, each on a free port, Prometheus with deploy/prometheus/
prometheus.yml (its static targets replaced by the processes' metrics
addresses, scrape and rule evaluation every second, storage in a temporary
directory) and deploy/prometheus/alerts.yml. Runs the work each panel
shows, twice, the second once Prometheus has scraped the first's counts
from every target (a rate or a histogram quantile needs samples from
before and after some work): a demo-model job that
succeeds and one on a corrupt model that fails, the job's package deployed
to the agent, inference through esbctl infer and esbctl bench, requests
the agent refuses, and bitstream loads that succeed and fail. Then asks
Prometheus's HTTP API for:

- every dashboard panel's expression, the template variables substituted
  (board and model by the agent's --board and the deployed model,
  $__rate_interval by 5m and $__range by 10m, windows that hold the whole
  run): each must return a series with a finite value;
- every alert rule's expression as written (it must evaluate; it may
  rightly be empty, as nothing is wrong), and the condition without its
  comparisons (deploy_promql.condition_parts: `a > 0 and on (i) b == 0`
  becomes `a` and `b`), which must have data: an alert whose inputs have
  no data could never fire;
- every rule's health in /api/v1/rules (evaluated, no error), and that
  the one alert the work provokes (failed bitstream loads) fires and no
  other does;
- every template variable's label_values() as a label-values query, which
  must list the agent's board and the deployed model;
- every metric family the code exports: the label names of its scraped
  series must be deploy_promql.LABELS' (plus job, instance and le).

Every process is started here and stopped (SIGTERM, then SIGKILL) by its
pid when the test ends, whatever happened; every wait is bounded.

Usage: deploy_e2e_test.py --source-dir DIR --esbctl P --server P
    --worker P --agent P --prometheus P --protoc P --proto-dir DIR
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import grpc
import yaml

import deploy_promql

ARGS = None
BOARD = "e2e-board"
MODEL = "lenet"
DATA = "/usr/share/datasets/fashion-mnist"
SUBSTITUTIONS = {"board": BOARD, "model": MODEL, "__rate_interval": "5m",
                 "__range": "10m", "__interval": "5s"}


class Process:
    """A started program; its output goes to a file, read back for lines."""

    def __init__(self, name, argv, directory):
        self.name = name
        self.log_path = os.path.join(directory, f"{name}.log")
        self.log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(argv, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def output(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def await_line(self, pattern, timeout=30):
        """The first match of `pattern` in the output, within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no /{pattern}/ in its output:\n"
                             f"{self.output()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.log.close()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def substitute(expr):
    def one(m):
        name = m.group(1) or m.group(2)
        if name not in SUBSTITUTIONS:
            raise AssertionError(f"unknown variable ${name} in {expr!r}")
        return SUBSTITUTIONS[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def finite_values(result):
    out = []
    for r in result:
        v = float(r["value"][1])
        if math.isfinite(v):
            out.append(v)
    return out


class DeployEndToEndTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        cls.tmp = tempfile.mkdtemp(prefix="deploy_e2e_")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.processes = []
        cls.addClassCleanup(cls.stop_all)
        cls.deploy = os.path.join(ARGS.source_dir, "deploy")
        cls.generate_messages()
        cls.start_service()
        cls.start_prometheus()
        cls.run_work()
        time.sleep(2)  # The rules are evaluated on the last scrapes too.

    @classmethod
    def stop_all(cls):
        for p in reversed(cls.processes):
            p.stop()

    @classmethod
    def start(cls, name, argv):
        p = Process(name, argv, cls.tmp)
        cls.processes.append(p)
        return p

    @classmethod
    def generate_messages(cls):
        out = os.path.join(cls.tmp, "py")
        os.makedirs(out)
        subprocess.run([ARGS.protoc, f"-I{ARGS.proto_dir}",
                        f"--python_out={out}", "inference/grpc_service.proto",
                        "esb/v1/agent.proto"], check=True, timeout=60)
        sys.path.insert(0, out)
        from inference import grpc_service_pb2
        from esb.v1 import agent_pb2
        cls.pb, cls.agent_pb = grpc_service_pb2, agent_pb2

    @classmethod
    def start_service(cls):
        t = cls.tmp
        server = cls.start("esb-server", [
            ARGS.server, "--listen", "127.0.0.1:0", "--data-dir",
            f"{t}/server", "--metrics-port", "0"])
        cls.server = server.await_line(r"listening on (\S+)").group(1)
        cls.server_metrics = server.await_line(
            r"metrics on http://(\S+)/metrics").group(1)
        worker = cls.start("esb-worker", [
            ARGS.worker, "--server", cls.server, "--work-dir",
            f"{t}/worker", "--metrics-port", "0", "--threads", "2"])
        cls.worker_metrics = worker.await_line(
            r"metrics listening on (\S+)").group(1)
        worker.await_line(r"serving")
        os.makedirs(f"{t}/bitstreams")
        with open(f"{t}/bitstreams/esb.bit.bin", "wb") as f:
            f.write(b"\0" * 64)
        agent = cls.start("esb-agent", [
            ARGS.agent, "--backend", "sim", "--listen", "127.0.0.1:0",
            "--model-dir", f"{t}/models", "--metrics-port", "0",
            "--board", BOARD, "--bitstream-dir", f"{t}/bitstreams",
            "--max-batch", "8"])
        cls.agent = agent.await_line(r"listening on (\S+)").group(1)
        cls.agent_metrics = agent.await_line(
            r"metrics on http://(\S+)/metrics").group(1)

    @classmethod
    def start_prometheus(cls):
        """deploy/prometheus as it is, but for the targets and intervals."""
        config_dir = os.path.join(cls.tmp, "prometheus")
        shutil.copytree(os.path.join(cls.deploy, "prometheus"), config_dir)
        path = os.path.join(config_dir, "prometheus.yml")
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
        config["global"].update(scrape_interval="1s", scrape_timeout="1s",
                                evaluation_interval="1s")
        targets = {"esb-server": [cls.server_metrics],
                   "esb-worker": [cls.worker_metrics],
                   "esb-agent": [cls.agent_metrics]}
        jobs = set()
        for sc in config["scrape_configs"]:
            jobs.add(sc["job_name"])
            sc["static_configs"] = [{"targets": targets[sc["job_name"]]}]
        assert jobs == set(targets), jobs
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f)
        last = ""
        for _ in range(3):  # A port taken between free_port() and the bind.
            port = free_port()
            p = cls.start("prometheus", [
                ARGS.prometheus, f"--config.file={path}",
                f"--storage.tsdb.path={cls.tmp}/tsdb",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h", "--log.level=warn"])
            cls.prometheus = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and p.proc.poll() is None:
                try:
                    with urllib.request.urlopen(cls.prometheus + "/-/ready",
                                                timeout=2) as r:
                        if r.status == 200:
                            return
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
                time.sleep(0.1)
            last = p.output()
            p.stop()
            cls.processes.remove(p)
        raise AssertionError(f"prometheus did not start:\n{last[-3000:]}")

    @classmethod
    def esbctl(cls, *args, ok=True):
        r = subprocess.run([ARGS.esbctl] + list(args), capture_output=True,
                           text=True, timeout=120)
        if ok and r.returncode != 0:
            raise AssertionError(f"esbctl {' '.join(args)}: exit "
                                 f"{r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    @classmethod
    def submit(cls, model):
        r = cls.esbctl(
            "submit", model, "--server", cls.server, "--bits", "4", "--sb",
            "2", "--calib", f"{DATA}/train-images-idx3-ubyte.gz",
            "--calib-count", "64", "--eval", f"{DATA}/t10k-images-idx3-ubyte.gz",
            "--labels", f"{DATA}/t10k-labels-idx1-ubyte.gz", "--limit", "200",
            "--wait", "--json", "--quiet", ok=False)
        return json.loads(r.stdout)

    @classmethod
    def run_work(cls):
        lenet = os.path.join(ARGS.source_dir, "models", "lenet.onnx")
        corrupt = os.path.join(cls.tmp, "corrupt.onnx")
        with open(corrupt, "wb") as f:
            f.write(bytes(range(256)) * 8)
        channel = grpc.insecure_channel(cls.agent)
        cls.addClassCleanup(channel.close)
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=cls.pb.ModelInferRequest.SerializeToString,
            response_deserializer=cls.pb.ModelInferResponse.FromString)
        load = channel.stream_unary(
            "/esb.v1.AgentService/LoadBitstream",
            request_serializer=cls.agent_pb.LoadBitstreamRequest
            .SerializeToString,
            response_deserializer=cls.agent_pb.LoadBitstreamResponse
            .FromString)
        for round_ in range(2):
            job = cls.submit(lenet)
            assert job["state"] == "JOB_STATE_SUCCEEDED", job
            failed = cls.submit(corrupt)
            assert failed["state"] == "JOB_STATE_FAILED", failed
            if round_ == 0:
                cls.esbctl("deploy", job["id"], "--server", cls.server,
                           "--agent", cls.agent, "--name", MODEL)
            r = cls.esbctl("infer", "--agent", cls.agent, "--model", MODEL,
                           "--input", f"{DATA}/t10k-images-idx3-ubyte.gz",
                           "--labels", f"{DATA}/t10k-labels-idx1-ubyte.gz",
                           "--limit", "256", "--batch", "4")
            assert "top-1" in r.stdout, r.stdout
            cls.esbctl("bench", "--agent", cls.agent, "--model", MODEL,
                       "--concurrency", "4", "--duration", "1")
            # Refused: an input the model does not have (INVALID_ARGUMENT,
            # labelled with the model) and a model the board lacks.
            for name in (MODEL, "absent"):
                request = cls.pb.ModelInferRequest(model_name=name)
                request.inputs.add(name="no-such-input", datatype="FP32",
                                   shape=[1, 4]).contents.fp32_contents \
                    .extend([0.0] * 4)
                try:
                    infer(request, timeout=10)
                    raise AssertionError(f"{name}: a bad request was served")
                except grpc.RpcError as e:
                    assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                        grpc.StatusCode.NOT_FOUND), e
            loaded = load(iter([cls.agent_pb.LoadBitstreamRequest(
                name="esb.bit.bin")]), timeout=10)
            assert loaded.name == "esb.bit.bin", loaded
            try:
                load(iter([cls.agent_pb.LoadBitstreamRequest(
                    name="absent.bit.bin")]), timeout=10)
                raise AssertionError("a missing bitstream loaded")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e
            # Each target scraped with this round's counts before the next
            # round adds to them.
            cls.await_scrapes(round_ + 1)

    @classmethod
    def query(cls, expr):
        url = (cls.prometheus + "/api/v1/query?" +
               urllib.parse.urlencode({"query": expr}))
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{expr!r}: HTTP {e.code}: "
                                 f"{e.read().decode(errors='replace')}")
        if body["status"] != "success":
            raise AssertionError(f"{expr!r}: {body}")
        return body["data"]

    @classmethod
    def api(cls, path, **params):
        url = cls.prometheus + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    @classmethod
    def await_scrapes(cls, rounds):
        """Until Prometheus holds each target's counts after `rounds`."""
        wanted = {
            'sum(esb_job_duration_seconds_count{outcome="succeeded"})': rounds,
            'sum(esb_job_duration_seconds_count{outcome="failed"})': rounds,
            'sum(esb_worker_jobs_total)': 2 * rounds,
            'sum(esb_agent_bitstream_loads_total)': 2 * rounds,
        }
        deadline = time.monotonic() + 30
        while True:
            got = {}
            for expr, n in wanted.items():
                result = cls.query(expr)["result"]
                got[expr] = float(result[0]["value"][1]) if result else None
            if all(got[e] == n for e, n in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus never saw round {rounds} "
                                     f"of the work: {got}")
            time.sleep(0.25)

    def test_every_target_is_up(self):
        targets = self.api("/api/v1/targets")["activeTargets"]
        jobs = {t["labels"]["job"]: t["health"] for t in targets}
        self.assertEqual(jobs, {"esb-server": "up", "esb-worker": "up",
                                "esb-agent": "up"})

    def test_dashboard_queries_have_data(self):
        queries = deploy_promql.dashboard_queries(self.deploy)
        self.assertGreater(len(queries), 20)
        empty = []
        for dashboard, title, expr in queries:
            data = self.query(substitute(expr))
            self.assertEqual(data["resultType"], "vector", expr)
            if not finite_values(data["result"]):
                empty.append(f"{dashboard} '{title}': {expr} -> "
                             f"{data['result']}")
        self.assertEqual(empty, [], "panels without data:\n" + "\n".join(empty))

    def test_alert_conditions_have_data(self):
        rules = deploy_promql.alert_rules(self.deploy)
        self.assertGreaterEqual(len(rules), 5)
        empty = []
        for _, name, expr in rules:
            self.query(expr)  # Evaluates (empty: not firing).
            for part in deploy_promql.condition_parts(expr):
                if not finite_values(self.query(part)["result"]):
                    empty.append(f"{name}: {part}")
        self.assertEqual(empty, [], "alert inputs without data")

    def test_alert_rules_evaluate(self):
        groups = self.api("/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        self.assertEqual(len(rules), len(deploy_promql.alert_rules(
            self.deploy)))
        for r in rules:
            self.assertEqual(r["health"], "ok", r)
            self.assertNotEqual(r["lastEvaluation"], "0001-01-01T00:00:00Z",
                                r["name"])
        # What the work provoked fires (failed bitstream loads, an alert
        # without a `for`), and nothing else: the rest of the service is
        # well.
        firing = sorted(r["name"] for r in rules if r["state"] == "firing")
        self.assertEqual(firing, ["EsbBitstreamLoadFailed"])

    def test_template_variables(self):
        expected = {"board": BOARD, "model": MODEL}
        variables = deploy_promql.template_queries(self.deploy)
        self.assertTrue(variables)
        for dashboard, var, selector, label in variables:
            values = self.api(f"/api/v1/label/{label}/values",
                              **{"match[]": substitute(selector)})
            self.assertIn(expected[var], values, f"{dashboard} ${var}")

    def test_exported_labels_are_the_table(self):
        families = deploy_promql.exported_metrics(ARGS.source_dir)
        self.assertEqual(set(families), set(deploy_promql.LABELS))
        for family, kind in families.items():
            with self.subTest(family=family):
                names = [family] if kind in ("counter", "gauge") else [
                    family + s for s in ("_bucket", "_sum", "_count")]
                series = self.api("/api/v1/series", **{
                    "match[]": [f"{{__name__=\"{n}\"}}" for n in names]})
                self.assertTrue(series, f"{family}: no series scraped")
                labels = set()
                for s in series:
                    labels |= set(s)
                labels -= {"__name__", "le"} | deploy_promql.TARGET_LABELS
                self.assertEqual(labels, deploy_promql.LABELS[family])

    @classmethod
    def tearDownClass(cls):
        print(f"\ndeploy_e2e_test: {time.monotonic() - cls.started:.1f} s "
              "from start to the last query", file=sys.stderr)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    for flag in ("--source-dir", "--esbctl", "--server", "--worker",
                 "--agent", "--prometheus", "--protoc", "--proto-dir"):
        parser.add_argument(flag, required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
