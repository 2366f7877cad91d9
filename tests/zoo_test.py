#!/usr/bin/python3
"""A representative part of the torchvision zoo, end to end through esbctl.

scripts/export_zoo.py exports each model (random seeded weights, opset 13,
free batch) with a batch of inputs and PyTorch's outputs. For each model:

  - `esbctl run` in FP32 matches PyTorch: max |diff| <= 1e-3 of the output's
    largest magnitude and the same argmax (per item, or per pixel for the
    segmentation model);
  - `esbctl quantize --sb 2` quantizes every Conv, Gemm and MatMul of the
    model, writes the three artifacts, and its QDQ export (model.esb.onnx)
    passes onnx.checker.

The subset covers the ops the zoo added: HardSwish/HardSigmoid
(MobileNetV3), ReduceMean (MNASNet), the channel shuffle's reshapes and
Slice (ShuffleNetV2), squeeze-excitation Muls (RegNet), SiLU (EfficientNet),
Concat-heavy fire modules (SqueezeNet) and Resize (LR-ASPP).

  zoo_test.py --esbctl build/client/esbctl --source-dir .
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx

MODELS = [
    "mobilenet_v3_small",
    "mnasnet0_5",
    "shufflenet_v2_x0_5",
    "regnet_y_400mf",
    "efficientnet_b0",
    "squeezenet1_1",
    "lraspp_mobilenet_v3_large",
]
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")


def run(cmd, timeout=900):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def check_fp32(esbctl, folder, name):
    model = os.path.join(folder, name + ".onnx")
    out = os.path.join(folder, name + ".out.npy")
    run([esbctl, "run", model, "--input", os.path.join(folder, name + ".npy"),
         "--output", out, "--quiet"])
    want = np.load(os.path.join(folder, name + ".ref.npy"))
    got = np.load(out).reshape(want.shape)
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    same = float((got.argmax(1) == want.argmax(1)).mean())
    problems = []
    if rel > 1e-3:
        problems.append(f"max |diff| is {rel:.2e} of the largest output")
    if same < 1.0:
        problems.append(f"argmax agrees on {same:.1%} only")
    return rel, problems


def check_quantize(esbctl, folder, name, calib):
    model = os.path.join(folder, name + ".onnx")
    out = os.path.join(folder, name + ".q")
    done = run([esbctl, "quantize", model, "--calib", calib, "--calib-count",
                "8", "--sb", "2", "-o", out, "--quiet", "--json"])
    report = json.loads(done.stdout)
    graph = onnx.load(model)
    layers = [n.name for n in graph.graph.node if n.op_type in QUANTIZED_OPS]
    quantized = {layer["name"] for layer in report["layers"]}
    problems = []
    missing = [n for n in layers if n not in quantized]
    if missing:
        problems.append(f"{len(missing)} of {len(layers)} layers not quantized,"
                        f" e.g. {missing[:3]}")
    for artifact in ("model.esb.onnx", "model.esbm", "report.json"):
        path = os.path.join(out, artifact)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            problems.append(f"{artifact} is missing or empty")
    try:
        onnx.checker.check_model(os.path.join(out, "model.esb.onnx"))
    except (onnx.checker.ValidationError, OSError) as e:
        problems.append(f"model.esb.onnx fails onnx.checker: {e}")
    return len(layers), problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--esbctl", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    models = args.models.split(",")
    failures = []
    with tempfile.TemporaryDirectory(prefix="zoo_test_") as folder:
        run(["/usr/bin/python3",
             os.path.join(args.source_dir, "scripts", "export_zoo.py"),
             "--out", folder, "--models", ",".join(models), "--batch", "2"],
            timeout=1200)
        calib = os.path.join(folder, "calib.npy")
        rng = np.random.default_rng(7)
        np.save(calib, rng.standard_normal((8, 3, 224, 224)).astype("float32"))
        for name in models:
            try:
                rel, problems = check_fp32(args.esbctl, folder, name)
                count, q_problems = check_quantize(args.esbctl, folder, name,
                                                   calib)
                problems += q_problems
            except (RuntimeError, subprocess.TimeoutExpired, KeyError,
                    ValueError) as e:
                problems = [str(e)]
                rel, count = float("nan"), 0
            status = "ok" if not problems else "FAIL: " + "; ".join(problems)
            print(f"{name:28s} fp32 rel diff {rel:.1e}, {count} layers "
                  f"quantized at sb 2: {status}", flush=True)
            if problems:
                failures.append(name)
    if failures:
        sys.exit(f"{len(failures)} of {len(models)} zoo models failed: "
                 f"{', '.join(failures)}")
    print(f"all {len(models)} zoo models pass")


if __name__ == "__main__":
    main()
