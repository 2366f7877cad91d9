#!/usr/bin/python3
"""Prints the zoo table (bench/zoo.sh) from the figures of each model.

  zoo_table.py RESULTS_DIR MODEL... [--header TEXT]

RESULTS_DIR/MODEL/ holds what bench/zoo.sh wrote for a model:
  ort.jsonl, qdq.jsonl  bench/ort_run.mjs on model.onnx and model.esb.onnx
  ours.jsonl            build/bench/esb_zoo_bench (engines fp32 and esb)
  quantize.json         {"seconds": S, "exit": CODE, "error": "..."}
  *_b8.npy              each engine's output at the largest batch
A .jsonl holds a line per round and batch. Times are the minimum (or --stat
median) of each engine's timed runs in its best round;
speed ratios are ORT's time over ours: above 1 we are faster.
"""
import argparse
import json
import math
import os

import numpy as np


def read_jsonl(path):
    """engine -> {"batches": {B: figures}, "error": str, "description": str}"""
    engines = {}
    if not os.path.exists(path):
        return engines
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            obj = json.loads(line)
            e = engines.setdefault(obj["engine"], {"batches": {}})
            if "error" in obj:
                e["error"] = obj["error"]
            elif "description" in obj:
                e["description"] = obj["description"]
            else:
                # One line per round: keep each figure's best round.
                best = e["batches"].setdefault(obj["batch"], dict(obj))
                for key in ("min_ms", "median_ms", "first_ms"):
                    best[key] = min(best[key], obj[key])
                best["rounds"] = best.get("rounds", 0) + 1
    return engines


def load(path):
    return np.load(path) if os.path.exists(path) else None


def agreement(a, b):
    """Top-1 (per image, or per pixel for N x C x H x W) agreement."""
    if a is None or b is None or a.shape != b.shape:
        return None
    same = a.argmax(axis=1) == b.argmax(axis=1)
    if a.ndim == 2:
        return f"{int(same.sum())}/{same.size}"
    return f"{100.0 * same.mean():.2f} % px"


def rel_err(ours, ref):
    if ours is None or ref is None or ours.shape != ref.shape:
        return None
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


STAT = "min_ms"


def ms(engine, batch):
    return engine.get("batches", {}).get(batch, {}).get(STAT)


def short(message, limit=160):
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[:limit] + "..."


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--small", type=int, default=1)
    parser.add_argument("--large", type=int, default=8)
    parser.add_argument("--stat", choices=["min", "median"], default="min",
                        help="which figure of the timed runs")
    args = parser.parse_args()
    global STAT
    STAT = args.stat + "_ms"
    b1, b8 = args.small, args.large

    print(f"| model | FP32 b{b1} ms: ours / ORT | ours/ORT b{b1} "
          f"| FP32 b{b8} img/s: ours / ORT | ours/ORT b{b8} "
          f"| ESB b{b1} ms | ESB/ORT b{b1} | ESB b{b8} img/s | ESB/ORT b{b8} "
          f"| FP32 max\\|ours-ORT\\|/max\\|ORT\\| | top-1 agree b{b8} "
          f"| quantize s | QDQ .esb.onnx in ORT, b{b8} | notes |")
    print("|---" * 14 + "|")
    ratios = {"fp32_1": [], "fp32_8": [], "esb_1": [], "esb_8": []}
    paths = {"int8 fast": 0, "exact f32": 0, "reference": 0}  # Models.

    def ratio(key, ort_ms, our_ms):
        if ort_ms is None or our_ms is None:
            return "-"
        r = ort_ms / our_ms
        ratios[key].append(r)
        return f"{r:.2f}x"

    def b1_cell(v):
        return "-" if v is None else f"{v:.2f}"

    def b8_cell(v):
        return "-" if v is None else f"{1000.0 * b8 / v:.1f}"

    for name in args.models:
        d = os.path.join(args.results, name)
        ort = read_jsonl(os.path.join(d, "ort.jsonl")).get("ort", {})
        qdq = read_jsonl(os.path.join(d, "qdq.jsonl")).get("qdq", {})
        ours = read_jsonl(os.path.join(d, "ours.jsonl"))
        fp32, esb = ours.get("fp32", {}), ours.get("esb", {})
        quant = {}
        if os.path.exists(os.path.join(d, "quantize.json")):
            with open(os.path.join(d, "quantize.json")) as f:
                quant = json.load(f)
        notes = []
        if "error" in fp32:
            notes.append(f"not supported: {short(fp32['error'])}")
        if "error" in ort:
            notes.append(f"ORT fails: {short(ort['error'])}")
        if quant.get("exit", 0) != 0:
            notes.append(f"quantize fails: {short(quant.get('error', ''))}")
        elif "error" in esb:
            notes.append(f"model.esbm does not run: {short(esb['error'])}")
        desc = esb.get("description", "")
        if desc and "reference" in desc:
            notes.append(short(desc, 240))
        for path in paths:
            if f"{path} path on" in desc:
                paths[path] += 1

        ort_out = load(os.path.join(d, f"ort_b{b8}.npy"))
        ours_out = load(os.path.join(d, f"fp32_b{b8}.npy"))
        esb_out = load(os.path.join(d, f"esb_b{b8}.npy"))
        qdq_out = load(os.path.join(d, f"qdq_b{b8}.npy"))
        err = rel_err(ours_out, ort_out)
        agree = agreement(ours_out, ort_out)

        if "error" in qdq:
            qdq_cell = f"fails: {short(qdq['error'], 100)}"
        elif ms(qdq, b8) is not None:
            qdq_cell = f"runs, {b8_cell(ms(qdq, b8))} img/s"
            a = agreement(qdq_out, esb_out)
            if a is not None:
                qdq_cell += f", top-1 vs our ESB {a}"
        else:
            qdq_cell = "-"

        seconds = quant.get("seconds")
        cells = [
            name,
            f"{b1_cell(ms(fp32, b1))} / {b1_cell(ms(ort, b1))}",
            ratio("fp32_1", ms(ort, b1), ms(fp32, b1)),
            f"{b8_cell(ms(fp32, b8))} / {b8_cell(ms(ort, b8))}",
            ratio("fp32_8", ms(ort, b8), ms(fp32, b8)),
            b1_cell(ms(esb, b1)),
            ratio("esb_1", ms(ort, b1), ms(esb, b1)),
            b8_cell(ms(esb, b8)),
            ratio("esb_8", ms(ort, b8), ms(esb, b8)),
            "-" if err is None else f"{err:.1e}",
            "-" if agree is None else agree,
            "-" if seconds is None else f"{seconds:.0f}",
            qdq_cell,
            "; ".join(notes),
        ]
        print("| " + " | ".join(cells) + " |")

    def geomean(values):
        if not values:
            return "-"
        return f"{math.exp(sum(map(math.log, values)) / len(values)):.2f}x"

    print()
    print(f"Geometric means over the models with figures: FP32 ours/ORT "
          f"{geomean(ratios['fp32_1'])} at batch {b1} "
          f"({len(ratios['fp32_1'])} models), {geomean(ratios['fp32_8'])} "
          f"at batch {b8}; ESB/ORT FP32 {geomean(ratios['esb_1'])} at "
          f"batch {b1} ({len(ratios['esb_1'])} models), "
          f"{geomean(ratios['esb_8'])} at batch {b8}.")
    print("ESB layers ran on the " + ", ".join(
        f"{path} path in {n} models" for path, n in paths.items()) +
          " (the executor's description; a model may use several).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
