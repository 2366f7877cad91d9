#!/usr/bin/python3
"""Checks every file in deploy/ with the tool that reads it, where this
machine has one, and against its expected structure otherwise.

- prometheus/: `promtool check config` (prometheus.yml with its rules;
  prometheus-k8s.yml with its Kubernetes discovery, which Debian's build
  lacks, swapped for a static target) and `promtool check rules`.
- systemd/esb-agent.service: `systemd-analyze verify` on a copy whose
  ExecStart is the built esb-agent and whose EnvironmentFile is the example
  one, with no warning allowed (systemd-analyze only warns about unknown or
  unparsable settings; the test first shows it does on a broken copy), and
  every flag of ExecStart, the environment substituted, is esb-agent's.
- Dashboards and alert rules: every metric they name is one the code
  exports (or Prometheus's `up`), with labels that metric has; every panel
  has a PromQL expression; the Boards dashboard filters every agent metric
  by its board and model variables; the panels and alerts the deployment
  promises are there.
- Grafana provisioning, compose.yaml and k8s/: they parse, have the
  services and kinds they should, and agree with each other and with the
  binaries (flags, ports, scrape targets, mounts, probes, selectors).

Usage: deploy_config_test.py --source-dir DIR --binary NAME=PATH ...
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

import deploy_promql

ARGS = None

_FLAGS = {}


def flags_taken(binary):
    """The flag names (underscored) `binary --helpfull` lists."""
    if binary not in _FLAGS:
        r = subprocess.run([binary, "--helpfull"], capture_output=True,
                           text=True, timeout=30)
        _FLAGS[binary] = set(re.findall(r"^\s+--(\w+)", r.stdout + r.stderr,
                                        re.M))
    return _FLAGS[binary]


def flag_value(args, flag):
    i = args.index(flag)
    return args[i + 1]


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


class DeployTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.src = os.path.abspath(ARGS.source_dir)
        cls.deploy = os.path.join(cls.src, "deploy")
        cls.binaries = {name: os.path.abspath(path) for name, path in
                        (b.split("=", 1) for b in ARGS.binary)}
        cls.families = deploy_promql.exported_metrics(cls.src)
        cls.series = deploy_promql.series_names(cls.families)
        cls.promtool = shutil.which("promtool")
        with open(os.path.join(cls.deploy, "compose.yaml"),
                  encoding="utf-8") as f:
            cls.compose = yaml.safe_load(f)
        with open(os.path.join(cls.deploy, "prometheus", "prometheus.yml"),
                  encoding="utf-8") as f:
            cls.prometheus = yaml.safe_load(f)

    def assert_flags(self, binary_name, args, where):
        taken = flags_taken(self.binaries[binary_name])
        self.assertGreater(len(taken), 3, binary_name)
        for word in args:
            if word.startswith("--"):
                name = word[2:].split("=", 1)[0].replace("-", "_")
                self.assertIn(name, taken, f"{where}: {binary_name} has no "
                              f"flag {word}")

    # ------------------------------------------------------------ metrics

    def test_label_table_matches_the_code(self):
        self.assertEqual(set(self.families), set(deploy_promql.LABELS),
                         "a metric was added, renamed or removed: update "
                         "tests/deploy_promql.py LABELS")

    def check_expression(self, expr, where):
        selectors, grouping = deploy_promql.analyse(expr)
        self.assertTrue(selectors, f"{where}: no metric in {expr!r}")
        labels_here = set(deploy_promql.TARGET_LABELS)
        for sel in selectors:
            if sel.metric in deploy_promql.PROMETHEUS_SERIES:
                family_labels = deploy_promql.PROMETHEUS_SERIES[sel.metric]
            else:
                self.assertTrue(sel.metric in self.series,
                                f"{where}: {sel.metric} is not exported")
                family = self.series[sel.metric]
                family_labels = set(deploy_promql.LABELS[family])
                if sel.metric.endswith("_bucket"):
                    family_labels.add("le")
            allowed = family_labels | deploy_promql.TARGET_LABELS
            for label, _, _ in sel.matchers:
                self.assertIn(label, allowed,
                              f"{where}: {sel.metric} has no label {label}")
            labels_here |= allowed
        for label in grouping:
            self.assertIn(label, labels_here,
                          f"{where}: no metric of {expr!r} has label {label}")
        return selectors

    def test_dashboard_and_alert_metrics_are_exported(self):
        queries = deploy_promql.dashboard_queries(self.deploy)
        self.assertGreater(len(queries), 20)
        for dashboard, title, expr in queries:
            self.check_expression(expr, f"{dashboard} '{title}'")
        rules = deploy_promql.alert_rules(self.deploy)
        for group, name, expr in rules:
            self.check_expression(expr, f"alerts.yml {name}")
            for part in deploy_promql.condition_parts(expr):
                self.check_expression(part, f"alerts.yml {name}")
        for dashboard, var, selector, label in \
                deploy_promql.template_queries(self.deploy):
            sels = self.check_expression(selector, f"{dashboard} ${var}")
            self.assertIn(label, deploy_promql.LABELS[sels[0].metric])

    def test_condition_parts(self):
        # What the end-to-end test queries for each alert.
        self.assertEqual(deploy_promql.condition_parts('up{job="a"} == 0'),
                         ['up{job="a"}'])
        self.assertEqual(
            deploy_promql.condition_parts(
                "a > 0 and on (instance) increase(b[5m]) == 0"),
            ["a", "increase(b[5m])"])
        self.assertEqual(
            deploy_promql.condition_parts("sum(rate(x[5m])) / sum(y) > 0.05"),
            ["sum(rate(x[5m])) / sum(y)"])
        self.assertEqual(deploy_promql.condition_parts("(a > 1) + b"),
                         ["(a > 1) + b"])

    # ---------------------------------------------------------- promtool

    def promtool_check(self, *args):
        self.assertIsNotNone(self.promtool, "promtool is missing (Debian "
                             "package prometheus, in scripts/packages.txt)")
        r = subprocess.run([self.promtool, "check"] + list(args),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout + r.stderr

    def test_promtool_config_and_rules(self):
        out = self.promtool_check(
            "config", os.path.join(self.deploy, "prometheus",
                                   "prometheus.yml"))
        self.assertIn("1 rule files found", out)
        out = self.promtool_check(
            "rules", os.path.join(self.deploy, "prometheus", "alerts.yml"))
        rules = deploy_promql.alert_rules(self.deploy)
        self.assertIn(f"{len(rules)} rules found", out)

    def test_promtool_kubernetes_config(self):
        path = os.path.join(self.deploy, "prometheus", "prometheus-k8s.yml")
        doc = load_yaml_docs(path)[0]
        swapped = 0
        for sc in doc["scrape_configs"]:
            if "kubernetes_sd_configs" in sc:
                roles = [c["role"] for c in sc.pop("kubernetes_sd_configs")]
                self.assertEqual(roles, ["pod"])
                sc["static_configs"] = [{"targets": ["127.0.0.1:1"]}]
                swapped += 1
                kept = [r for r in sc["relabel_configs"]
                        if r.get("action") == "keep"]
                self.assertTrue(any("prometheus_io_scrape" in
                                    r["source_labels"][0] for r in kept))
                targets = {r.get("target_label") for r in
                           sc["relabel_configs"]}
                # The alerts match on job; the adapter needs namespace.
                self.assertTrue({"job", "namespace", "__address__",
                                 "__metrics_path__"} <= targets)
        self.assertEqual(swapped, 1)
        with tempfile.TemporaryDirectory(prefix="deploy_k8s_") as d:
            shutil.copytree(os.path.join(self.deploy, "prometheus"),
                            os.path.join(d, "prometheus"))
            copy = os.path.join(d, "prometheus", "prometheus-k8s.yml")
            with open(copy, "w", encoding="utf-8") as f:
                yaml.safe_dump(doc, f)
            self.promtool_check("config", copy)

    def test_prometheus_targets_are_the_compose_services(self):
        services = self.compose["services"]
        by_job = {}
        for sc in self.prometheus["scrape_configs"]:
            for static in sc.get("static_configs", []):
                by_job.setdefault(sc["job_name"], []).extend(
                    static["targets"])
        self.assertEqual(set(by_job), {"esb-server", "esb-worker",
                                       "esb-agent"})
        seen = set()
        for job, targets in by_job.items():
            for target in targets:
                host, port = target.rsplit(":", 1)
                self.assertIn(host, services, target)
                service = services[host]
                self.assertEqual(service["build"]["target"], job, target)
                self.assertEqual(flag_value(service["command"],
                                            "--metrics-port"), port, target)
                seen.add(host)
        esb = {n for n, s in services.items() if "build" in s}
        self.assertEqual(seen, esb, "a compose service is not scraped")
        self.assertEqual(self.prometheus["rule_files"], ["alerts.yml"])
        boards = [c for sc in self.prometheus["scrape_configs"]
                  for c in sc.get("file_sd_configs", [])]
        self.assertEqual(len(boards), 1)

    # ------------------------------------------------------------ alerts

    def test_alerts_cover_the_promised_conditions(self):
        rules = {name: expr for _, name, expr in
                 deploy_promql.alert_rules(self.deploy)}
        with open(os.path.join(self.deploy, "prometheus", "alerts.yml"),
                  encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for rule in group["rules"]:
                self.assertIn("summary", rule["annotations"], rule["alert"])
                self.assertIn(rule["labels"]["severity"],
                              ("warning", "critical"))

        def uses(name, *metrics):
            sels, _ = deploy_promql.analyse(rules[name])
            self.assertEqual({s.metric for s in sels} & set(metrics),
                             set(metrics), name)

        uses("EsbBoardDown", "up")
        self.assertIn('job="esb-agent"', rules["EsbBoardDown"])
        uses("EsbBoardErrorRate", "esb_agent_requests_total")
        self.assertIn('status!="OK"', rules["EsbBoardErrorRate"])
        uses("EsbBoardLatencyOverBudget", "esb_agent_request_seconds_bucket")
        self.assertIn("histogram_quantile(0.99",
                      rules["EsbBoardLatencyOverBudget"])
        uses("EsbQueueStuck", "esb_queue_depth", "esb_job_attempts_total")
        uses("EsbJobsFailing", "esb_job_duration_seconds_count")
        self.assertIn('outcome="failed"', rules["EsbJobsFailing"])

    # ------------------------------------------------------------ grafana

    def test_grafana_provisioning(self):
        prov = os.path.join(self.deploy, "grafana", "provisioning")
        ds = load_yaml_docs(os.path.join(prov, "datasources",
                                         "prometheus.yaml"))[0]
        self.assertEqual(ds["apiVersion"], 1)
        (source,) = ds["datasources"]
        self.assertEqual(source["type"], "prometheus")
        self.assertEqual(source["uid"], "esb-prometheus")
        m = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"])
        self.assertIsNotNone(m, source["url"])
        self.assertIn(m.group(1), self.compose["services"])
        self.assertIn(f"{m.group(2)}:{m.group(2)}",
                      self.compose["services"][m.group(1)]["ports"])

        dp = load_yaml_docs(os.path.join(prov, "dashboards", "esb.yaml"))[0]
        self.assertEqual(dp["apiVersion"], 1)
        (provider,) = dp["providers"]
        self.assertEqual(provider["type"], "file")
        grafana = self.compose["services"]["grafana"]
        mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
        self.assertEqual(mounts.get("./grafana/dashboards"),
                         provider["options"]["path"])
        self.assertEqual(mounts.get("./grafana/provisioning"),
                         "/etc/grafana/provisioning")
        home = grafana["environment"][
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        self.assertTrue(os.path.isfile(os.path.join(
            self.deploy, "grafana", "dashboards",
            os.path.relpath(home, provider["options"]["path"]))), home)

    def test_dashboards_structure(self):
        boards = deploy_promql.dashboards(self.deploy)
        self.assertEqual(set(boards), {"boards.json", "jobs.json"})
        uids = set()
        for name, d in boards.items():
            with self.subTest(dashboard=name):
                self.assertNotIn(d["uid"], uids)
                uids.add(d["uid"])
                ids = [p["id"] for p in d["panels"]] + [
                    p["id"] for p in deploy_promql.panels(d)
                    if p not in d["panels"]]
                self.assertEqual(len(ids), len(set(ids)), "panel ids")
                cells = set()
                for p in d["panels"]:
                    g = p["gridPos"]
                    self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
                    for x in range(g["x"], g["x"] + g["w"]):
                        for y in range(g["y"], g["y"] + g["h"]):
                            self.assertNotIn((x, y), cells,
                                             f"'{p['title']}' overlaps")
                            cells.add((x, y))
                for p in deploy_promql.panels(d):
                    self.assertEqual(p["datasource"]["uid"], "esb-prometheus")
                    self.assertTrue(p["targets"], p["title"])
                    refs = [t["refId"] for t in p["targets"]]
                    self.assertEqual(len(refs), len(set(refs)))
                    for t in p["targets"]:
                        self.assertTrue(t["expr"].strip(), p["title"])
                        self.assertEqual(t["datasource"]["uid"],
                                         "esb-prometheus")

    def metrics_of(self, dashboard):
        out = {}
        for p in deploy_promql.panels(dashboard):
            for t in p["targets"]:
                for sel in deploy_promql.analyse(t["expr"])[0]:
                    out.setdefault(sel.metric, []).append((p["title"],
                                                           t["expr"], sel))
        return out

    def test_boards_dashboard(self):
        d = deploy_promql.dashboards(self.deploy)["boards.json"]
        self.assertEqual(d["title"], "ESB Boards")
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(set(variables), {"board", "model"})
        for v in variables.values():
            self.assertEqual(v["type"], "query")
            self.assertTrue(v["includeAll"] and v["multi"])
            self.assertEqual(v["allValue"], ".*")
        used = self.metrics_of(d)
        # Every agent selector is narrowed to the chosen boards and models.
        for metric, places in used.items():
            if not metric.startswith("esb_agent_"):
                continue
            labels = deploy_promql.LABELS[self.series[metric]]
            for title, expr, sel in places:
                self.assertIn(("=~", "$board"), sel.matcher("board"), title)
                if "model" in labels:
                    self.assertIn(("=~", "$model"), sel.matcher("model"),
                                  title)
        exprs = [t["expr"] for p in deploy_promql.panels(d)
                 for t in p["targets"]]
        for metric in ("esb_agent_inferences_total",
                       "esb_agent_operations_total",
                       "esb_agent_request_seconds_bucket",
                       "esb_agent_batch_size_bucket",
                       "esb_agent_power_watts",
                       "esb_agent_energy_joules_total",
                       "esb_agent_bitstream_loads_total",
                       "esb_agent_requests_total",
                       "esb_agent_device_timeouts_total"):
            self.assertIn(metric, used)
        for q in ("0.5", "0.95", "0.99"):
            self.assertTrue(any(
                f"histogram_quantile({q}," in e and
                "esb_agent_request_seconds_bucket" in e for e in exprs), q)
        self.assertTrue(any("esb_agent_energy_joules_total" in e and
                            "esb_agent_inferences_total" in e and
                            "source" in e for e in exprs),
                        "energy per inference with its source")
        self.assertTrue(any('status!="OK"' in e for e in exprs), "errors")
        self.assertTrue(any("rail" in e and "esb_agent_power_watts" in e
                            for e in exprs), "power per rail")

    def test_jobs_dashboard(self):
        d = deploy_promql.dashboards(self.deploy)["jobs.json"]
        self.assertEqual(d["title"], "ESB Jobs")
        used = self.metrics_of(d)
        for metric in ("esb_queue_depth", "esb_jobs",
                       "esb_job_duration_seconds_bucket",
                       "esb_worker_stage_duration_seconds_bucket",
                       "esb_workers_connected", "esb_worker_jobs_total",
                       "esb_lease_expiries_total"):
            self.assertIn(metric, used)
        exprs = [t["expr"] for p in deploy_promql.panels(d)
                 for t in p["targets"]]
        for q in ("0.5", "0.95", "0.99"):
            self.assertTrue(any(
                f"histogram_quantile({q}," in e and "by (outcome, le)" in e
                for e in exprs), q)
        self.assertTrue(any("by (state)" in e for e in exprs))
        self.assertTrue(any("by (stage, le)" in e for e in exprs))

    # ------------------------------------------------------------ systemd

    def verify_unit(self, text, env_path, directory):
        path = os.path.join(directory, "esb-agent.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace("/usr/local/bin/esb-agent",
                                 self.binaries["esb-agent"]).replace(
                "EnvironmentFile=/etc/default/esb-agent",
                f"EnvironmentFile={env_path}"))
        return subprocess.run(
            ["systemd-analyze", "verify", "--man=no", path],
            capture_output=True, text=True, timeout=60)

    def test_systemd_unit(self):
        self.assertIsNotNone(shutil.which("systemd-analyze"),
                             "systemd-analyze is missing (Debian package "
                             "systemd, in scripts/packages.txt)")
        unit_path = os.path.join(self.deploy, "systemd", "esb-agent.service")
        env_path = os.path.join(self.deploy, "systemd", "esb-agent.env")
        with open(unit_path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/local/bin/esb-agent ", text)
        self.assertIn("EnvironmentFile=/etc/default/esb-agent\n", text)
        with tempfile.TemporaryDirectory(prefix="deploy_unit_") as d:
            r = self.verify_unit(text, env_path, d)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual((r.stdout + r.stderr).strip(), "",
                             "systemd-analyze warned")
            # The check is not vacuous: a bad setting is reported.
            broken = self.verify_unit(
                text.replace("Restart=on-failure", "Restart=sometimes"),
                env_path, d)
            self.assertIn("sometimes", broken.stdout + broken.stderr)

        settings = {}
        joined = re.sub(r"\\\n\s*", " ", text)
        for line in joined.splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                settings.setdefault(key.strip(), []).append(value.strip())
        self.assertEqual(settings["Restart"], ["on-failure"])
        self.assertEqual(settings["NoNewPrivileges"], ["yes"])
        self.assertEqual(settings["CapabilityBoundingSet"], [""])
        self.assertEqual(settings["ProtectSystem"], ["strict"])
        self.assertEqual(settings["DevicePolicy"], ["closed"])
        self.assertEqual(settings["DeviceAllow"], ["char-uio rw"])
        self.assertIn("/lib/firmware", settings["ReadWritePaths"][0].split())
        self.assertNotIn("MemoryDenyWriteExecute", settings)  # oneDNN's JIT.

        env = {}
        with open(env_path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    key, _, value = line.partition("=")
                    env[key] = value
        self.assertIn(env["ESB_BACKEND"], ("zcu102", "sim"))
        command = settings["ExecStart"][0]
        for key, value in env.items():
            command = command.replace("${" + key + "}", value).replace(
                "$" + key, value)
        self.assertNotIn("$", command)
        args = shlex.split(command)
        self.assertEqual(args[0], "/usr/local/bin/esb-agent")
        self.assert_flags("esb-agent", args[1:], "esb-agent.service")
        for flag in ("--backend", "--listen", "--metrics-port", "--board",
                     "--model-dir", "--bitstream-dir"):
            self.assertIn(flag, args)
        # State lives in the unit's StateDirectory.
        state = "/var/lib/" + settings["StateDirectory"][0]
        self.assertTrue(flag_value(args, "--model-dir").startswith(state))
        self.assertTrue(flag_value(args, "--bitstream-dir").startswith(state))

    # ------------------------------------------------------------ compose

    def dockerfile_stages(self):
        with open(os.path.join(self.src, "Dockerfile"),
                  encoding="utf-8") as f:
            return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", f.read(),
                                  re.M | re.I))

    def test_compose(self):
        services = self.compose["services"]
        self.assertEqual(set(services), {
            "esb-server", "esb-worker-1", "esb-worker-2", "esb-agent",
            "prometheus", "grafana"})
        stages = self.dockerfile_stages()
        names = set()
        for name, s in services.items():
            with self.subTest(service=name):
                if "build" not in s:
                    self.assertRegex(s["image"], r"^[\w./-]+:[\w.-]+$")
                    continue
                target = s["build"]["target"]
                self.assertIn(target, stages)
                self.assertEqual(os.path.normpath(os.path.join(
                    self.deploy, s["build"]["context"])),
                    os.path.normpath(self.src))
                self.assert_flags(target, s["command"], f"compose {name}")
                if "--name" in s["command"]:
                    names.add(flag_value(s["command"], "--name"))
        self.assertEqual(len(names), 2, "workers need distinct names")

        server = services["esb-server"]["command"]
        self.assertTrue(flag_value(server, "--listen").startswith("0.0.0.0:"))
        port = flag_value(server, "--listen").rsplit(":", 1)[1]
        for w in ("esb-worker-1", "esb-worker-2"):
            cmd = services[w]["command"]
            self.assertEqual(flag_value(cmd, "--server"), f"esb-server:{port}")
            self.assertEqual(flag_value(cmd, "--metrics-host"), "0.0.0.0")
            self.assertEqual(services[w]["depends_on"]["esb-server"],
                             {"condition": "service_healthy"})
        agent = services["esb-agent"]["command"]
        self.assertEqual(flag_value(agent, "--backend"), "sim")

        volumes = set(self.compose["volumes"])
        for name, s in services.items():
            for v in s.get("volumes", []):
                source, target = v.split(":")[:2]
                if source.startswith("."):
                    self.assertTrue(os.path.exists(os.path.join(
                        self.deploy, source)), f"{name}: {source}")
                else:
                    self.assertIn(source, volumes, name)
        mounted = lambda s: [v.split(":")[1] for v in
                             services[s].get("volumes", [])]
        self.assertIn(flag_value(server, "--data-dir"), mounted("esb-server"))
        self.assertIn(flag_value(agent, "--model-dir"), mounted("esb-agent"))
        prom = services["prometheus"]
        self.assertIn("./prometheus:/etc/prometheus:ro", prom["volumes"])
        self.assertIn("--config.file=/etc/prometheus/prometheus.yml",
                      prom["command"])

    # -------------------------------------------------------- kubernetes

    def k8s_objects(self):
        objects = []
        for name in sorted(os.listdir(os.path.join(self.deploy, "k8s"))):
            if name.endswith((".yaml", ".yml")):
                for doc in load_yaml_docs(os.path.join(self.deploy, "k8s",
                                                       name)):
                    self.assertIn("apiVersion", doc, name)
                    self.assertIn("kind", doc, name)
                    self.assertIn("name", doc["metadata"], name)
                    objects.append(doc)
        return objects

    def test_kubernetes(self):
        objects = self.k8s_objects()
        by_kind = {}
        for o in objects:
            by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
        self.assertTrue({"Namespace", "StatefulSet", "Deployment", "Service",
                         "HorizontalPodAutoscaler",
                         "ConfigMap"} <= set(by_kind))
        namespace = next(iter(by_kind["Namespace"]))
        for o in objects:
            if o["kind"] not in ("Namespace", "ConfigMap"):
                self.assertEqual(o["metadata"]["namespace"], namespace,
                                 o["metadata"]["name"])

        sts = by_kind["StatefulSet"]["esb-server"]
        dep = by_kind["Deployment"]["esb-worker"]
        stages = self.dockerfile_stages()
        for workload, binary in ((sts, "esb-server"), (dep, "esb-worker")):
            spec = workload["spec"]
            pod = spec["template"]
            self.assertEqual(
                {k: pod["metadata"]["labels"][k]
                 for k in spec["selector"]["matchLabels"]},
                spec["selector"]["matchLabels"])
            sc = pod["spec"]["securityContext"]
            self.assertTrue(sc["runAsNonRoot"])
            self.assertEqual(sc["runAsUser"], 10001)  # The Dockerfile's uid.
            (c,) = pod["spec"]["containers"]
            self.assertEqual(c["image"].split(":")[0], binary)
            self.assertIn(binary, stages)
            self.assert_flags(binary, c["args"], f"k8s {binary}")
            self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            metrics_port = int(flag_value(c["args"], "--metrics-port"))
            self.assertEqual(ports["metrics"], metrics_port)
            ann = pod["metadata"]["annotations"]
            self.assertEqual(ann["prometheus.io/scrape"], "true")
            self.assertEqual(int(ann["prometheus.io/port"]), metrics_port)
            self.assertEqual(ann["prometheus.io/path"], "/metrics")
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            volumes = {v["name"] for v in pod["spec"].get("volumes", [])}
            volumes |= {t["metadata"]["name"] for t in
                        spec.get("volumeClaimTemplates", [])}
            self.assertTrue(set(mounts.values()) <= volumes)
            if binary == "esb-server":
                grpc_port = int(flag_value(c["args"], "--listen")
                                .rsplit(":", 1)[1])
                self.assertEqual(ports["grpc"], grpc_port)
                for probe in ("startupProbe", "readinessProbe",
                              "livenessProbe"):
                    self.assertEqual(c[probe]["grpc"]["port"], grpc_port,
                                     probe)
                # The data directory is on the claim.
                (claim,) = spec["volumeClaimTemplates"]
                self.assertEqual(
                    mounts[flag_value(c["args"], "--data-dir")],
                    claim["metadata"]["name"])
                self.assertIn("storage", claim["spec"]["resources"]
                              ["requests"])
                governing = by_kind["Service"][spec["serviceName"]]
                self.assertEqual(governing["spec"]["clusterIP"], "None")
            else:
                self.assertEqual(flag_value(c["args"], "--metrics-host"),
                                 "0.0.0.0")
                server_host, server_port = flag_value(
                    c["args"], "--server").rsplit(":", 1)
                service = by_kind["Service"][server_host]
                self.assertIn(int(server_port),
                              [p["port"] for p in service["spec"]["ports"]])
                for probe in ("readinessProbe", "livenessProbe"):
                    self.assertEqual(c[probe]["tcpSocket"]["port"], "metrics")
                self.assertIn("$(POD_NAME)", c["args"])

        for name, svc in by_kind["Service"].items():
            selector = svc["spec"]["selector"]
            matches = [w for w in (sts, dep) if all(
                w["spec"]["template"]["metadata"]["labels"].get(k) == v
                for k, v in selector.items())]
            self.assertEqual(len(matches), 1, f"Service {name}")
            (c,) = matches[0]["spec"]["template"]["spec"]["containers"]
            names = {p["name"] for p in c["ports"]}
            for p in svc["spec"]["ports"]:
                self.assertIn(p["targetPort"], names, f"Service {name}")

        hpa = by_kind["HorizontalPodAutoscaler"]["esb-worker"]
        self.assertEqual(hpa["apiVersion"], "autoscaling/v2")
        self.assertEqual(hpa["spec"]["scaleTargetRef"],
                         {"apiVersion": "apps/v1", "kind": "Deployment",
                          "name": "esb-worker"})
        (metric,) = hpa["spec"]["metrics"]
        self.assertEqual(metric["type"], "External")
        name = metric["external"]["metric"]["name"]
        self.assertEqual(name, "esb_queue_depth")
        self.assertIn(name, self.families)
        self.assertLess(hpa["spec"]["minReplicas"],
                        hpa["spec"]["maxReplicas"])
        # prometheus-adapter serves that name, from the exported metric.
        (adapter,) = by_kind["ConfigMap"].values()
        config = yaml.safe_load(adapter["data"]["config.yaml"])
        (rule,) = config["externalRules"]
        self.assertEqual(rule["name"]["as"], name)
        self.assertTrue(rule["seriesQuery"].startswith(name + "{"))
        self.assertIn("namespace", rule["resources"]["overrides"])


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--binary", action="append", default=[],
                        help="NAME=PATH of a built binary")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
