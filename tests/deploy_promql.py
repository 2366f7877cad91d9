"""What the deploy/ tests share: the metrics the code exports, and the
PromQL of the dashboards and alert rules taken apart.

exported_metrics() reads the metric families from the sources (every
prometheus::BuildCounter/BuildGauge/BuildHistogram ... .Name("...") in
server/, worker/ and fpga_agent/), so a renamed metric fails the checks.
LABELS is each family's label names as the code sets them (checked against
the sources' family list by deploy_config_test.py and against the series a
real Prometheus scraped from the running programs by deploy_e2e_test.py).
"""

import glob
import json
import os
import re

import yaml

# Labels of each family as exported (Prometheus adds job and instance;
# histograms' _bucket series have le too).
LABELS = {
    # esb-server (server/metrics.cc)
    "esb_jobs": {"state"},
    "esb_queue_depth": set(),
    "esb_workers_connected": set(),
    "esb_lease_expiries_total": set(),
    "esb_job_attempts_total": set(),
    "esb_upload_bytes_total": set(),
    "esb_jobs_submitted_total": set(),
    "esb_job_duration_seconds": {"outcome"},
    # esb-worker (worker/worker.cc)
    "esb_worker_stage_duration_seconds": {"stage"},
    "esb_worker_jobs_total": {"outcome"},
    "esb_worker_jobs_running": set(),
    "esb_worker_layers_quantized_total": set(),
    # esb-agent (fpga_agent/metrics.cc), each with the board's name
    "esb_agent_requests_total": {"board", "model", "status"},
    "esb_agent_queue_seconds": {"board", "model"},
    "esb_agent_compute_seconds": {"board", "model"},
    "esb_agent_request_seconds": {"board", "model"},
    "esb_agent_inferences_total": {"board", "model"},
    "esb_agent_operations_total": {"board", "model"},
    "esb_agent_batch_size": {"board", "model"},
    "esb_agent_energy_joules_total": {"board", "model", "source"},
    "esb_agent_power_watts": {"board", "rail", "source"},
    "esb_agent_bitstream_loads_total": {"board", "outcome"},
    "esb_agent_bitstream_load_seconds": {"board"},
    "esb_agent_device_timeouts_total": {"board"},
    "esb_agent_models_loaded": {"board"},
}

# Series Prometheus makes itself, and the labels it adds to every series.
PROMETHEUS_SERIES = {"up": set()}
TARGET_LABELS = {"job", "instance"}

_FAMILY = re.compile(
    r"Build(Counter|Gauge|Histogram|Summary)\(\)\s*\.Name\(\s*\"([^\"]+)\"\)")


def exported_metrics(source_dir):
    """{family name: "counter" | "gauge" | "histogram" | "summary"}."""
    families = {}
    for folder in ("server", "worker", "fpga_agent"):
        for path in glob.glob(os.path.join(source_dir, folder, "*.cc")):
            if path.endswith("_test.cc"):
                continue
            with open(path, encoding="utf-8") as f:
                for kind, name in _FAMILY.findall(f.read()):
                    families[name] = kind.lower()
    return families


def series_names(families):
    """{series name: family} for every series name a family exports."""
    out = {}
    for name, kind in families.items():
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                out[name + suffix] = name
        elif kind == "summary":
            for suffix in ("", "_sum", "_count"):
                out[name + suffix] = name
        else:
            out[name] = name
    return out


# ------------------------------------------------------------ PromQL tokens

_TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<var>\$\{[^}]+\}|\$\w+)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){},])
  | (?P<space>\s+)
""", re.VERBOSE)

_MODIFIERS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar",
                 "count", "count_values", "bottomk", "topk", "quantile"}
_KEYWORDS = _MODIFIERS | _AGGREGATIONS | {"and", "or", "unless", "bool",
                                          "offset"}


def tokens(expr):
    out = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot read PromQL at {expr[pos:pos + 20]!r} "
                             f"in {expr!r}")
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group(), m.start(), m.end()))
        pos = m.end()
    return out


class Selector:
    """A vector selector: metric name and its label matchers."""

    def __init__(self, metric):
        self.metric = metric
        self.matchers = []  # (label, op, value) with the quotes removed

    def matcher(self, label):
        return [(op, v) for l, op, v in self.matchers if l == label]


def analyse(expr):
    """(selectors, grouping labels) of a PromQL expression.

    Selectors are the vector selectors (metric name and matchers); grouping
    labels are the names in by/without/on/ignoring/group_left/group_right
    lists.
    """
    toks = tokens(expr)
    selectors = []
    grouping = set()
    i = 0
    while i < len(toks):
        kind, text, _, _ = toks[i]
        if kind == "ident" and text in _MODIFIERS:
            if i + 1 < len(toks) and toks[i + 1][1] == "(":
                j = i + 2
                while j < len(toks) and toks[j][1] != ")":
                    if toks[j][0] == "ident":
                        grouping.add(toks[j][1])
                    j += 1
                i = j + 1
                continue
            i += 1
            continue
        if kind == "ident" and text not in _KEYWORDS:
            following = toks[i + 1][1] if i + 1 < len(toks) else ""
            if following == "(":
                i += 1  # A function or an aggregation.
                continue
            sel = Selector(text)
            i += 1
            if following == "{":
                i = _read_matchers(toks, i + 1, sel)
            selectors.append(sel)
            continue
        if text == "{":  # A selector with no name: {__name__="..."}.
            sel = Selector("")
            i = _read_matchers(toks, i + 1, sel)
            selectors.append(sel)
            continue
        i += 1
    return selectors, grouping


def _read_matchers(toks, i, sel):
    while i < len(toks) and toks[i][1] != "}":
        if toks[i][0] == "ident" and i + 2 < len(toks):
            label, op, value = toks[i][1], toks[i + 1][1], toks[i + 2][1]
            sel.matchers.append((label, op, value[1:-1]))
            i += 3
            continue
        i += 1
    return i + 1


def _depth_zero_spans(toks):
    """Yields (index, token) of the tokens outside any parentheses."""
    depth = 0
    for i, t in enumerate(toks):
        if t[1] in ("(", "{"):
            depth += 1
        elif t[1] in (")", "}"):
            depth -= 1
        elif depth == 0:
            yield i, t


def condition_parts(expr):
    """An alert condition as the expressions whose data it tests.

    The expression is split at its top-level `and`/`or`/`unless` (with their
    on/ignoring lists dropped), and each part loses a top-level comparison
    with a number (`> 0.05`, `== 0`): what is left is what the alert looks
    at, which has data whenever the metrics do, firing or not.
    """
    toks = tokens(expr)
    cuts = [i for i, t in _depth_zero_spans(toks)
            if t[0] == "ident" and t[1] in ("and", "or", "unless")]
    parts = []
    start = 0
    for cut in cuts + [len(toks)]:
        piece = toks[start:cut]
        start = cut + 1
        # Drop a leading on (...) / ignoring (...) of a set operator.
        if piece and piece[0][1] in ("on", "ignoring"):
            close = next(k for k, t in enumerate(piece) if t[1] == ")")
            piece = piece[close + 1:]
        # Drop a trailing top-level comparison with a number.
        top = list(_depth_zero_spans(piece))
        for k, t in top:
            if t[1] in ("==", "!=", ">=", "<=", ">", "<"):
                rest = [x for x in piece[k + 1:] if x[1] != "bool"]
                if len(rest) == 1 and rest[0][0] == "number":
                    piece = piece[:k]
                break
        if not piece:
            raise ValueError(f"empty part in {expr!r}")
        parts.append(expr[piece[0][2]:piece[-1][3]])
    return parts


# --------------------------------------------------- dashboards and alerts


def dashboards(deploy_dir):
    """{file name: dashboard JSON}."""
    out = {}
    for path in sorted(glob.glob(os.path.join(deploy_dir, "grafana",
                                              "dashboards", "*.json"))):
        with open(path, encoding="utf-8") as f:
            out[os.path.basename(path)] = json.load(f)
    return out


def panels(dashboard):
    """Every panel, rows' nested panels included, rows themselves not."""
    out = []
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            out += p.get("panels", [])
        else:
            out.append(p)
    return out


def dashboard_queries(deploy_dir):
    """[(dashboard file, panel title, expr)] of every panel target."""
    out = []
    for name, d in dashboards(deploy_dir).items():
        for p in panels(d):
            for t in p.get("targets", []):
                out.append((name, p.get("title", ""), t.get("expr", "")))
    return out


def template_queries(deploy_dir):
    """[(dashboard file, variable, metric selector, label)] of every
    label_values() variable."""
    out = []
    for name, d in dashboards(deploy_dir).items():
        for v in d.get("templating", {}).get("list", []):
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q)
            if m is None:
                raise ValueError(f"{name}: variable {v.get('name')}: "
                                 f"query {q!r} is not label_values(...)")
            out.append((name, v["name"], m.group(1).strip(), m.group(2)))
    return out


def alert_rules(deploy_dir):
    """[(group, alert name, expr)] of deploy/prometheus/alerts.yml."""
    with open(os.path.join(deploy_dir, "prometheus", "alerts.yml"),
              encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    out = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            out.append((group["name"], rule.get("alert") or rule.get("record"),
                        rule["expr"]))
    return out
