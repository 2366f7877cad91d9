#!/usr/bin/python3
"""MobileNetV3's activations from PyTorch's own ONNX export, through esbctl.

A small network built of MobileNetV3's parts (a conv with HardSwish, a
depthwise conv, a squeeze-and-excitation gate with HardSigmoid, a linear
head) is exported by torch.onnx at opset 13 (HardSwish exported as
HardSigmoid and Mul) and at opset 14 (HardSwish as one op), with random
weights. `esbctl run` runs each on a batch of random inputs in FP32 and
quantized (--precision esb); FP32 must match PyTorch within 1e-4 of the
output's largest magnitude, and the quantized run must keep the same
ranking as PyTorch on most items.

  hard_activations_test.py --esbctl build/client/esbctl
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels, squeezed):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        s = torch.relu(self.reduce(self.pool(x)))
        return x * nn.functional.hardsigmoid(self.expand(s))


class TinyMobileNetV3(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.Hardswish())
        self.depthwise = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Hardswish())
        self.se = SqueezeExcite(16, 8)
        self.project = nn.Conv2d(16, 24, 1)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 32),
            nn.Hardswish(), nn.Linear(32, 10))

    def forward(self, x):
        return self.head(self.project(self.se(self.depthwise(self.stem(x)))))


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n"
                 f"{done.stdout}{done.stderr}")
    return done


def ops_of(path):
    import onnx
    return {n.op_type for n in onnx.load(path).graph.node}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--esbctl", required=True)
    args = parser.parse_args()

    torch.manual_seed(7)
    model = TinyMobileNetV3().eval()
    inputs = np.random.default_rng(3).uniform(
        -2, 2, size=(64, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(inputs)).numpy()

    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        x_path = os.path.join(tmp, "x.npy")
        np.save(x_path, inputs)
        for opset, expect_op in ((13, "HardSigmoid"), (14, "HardSwish")):
            onnx_path = os.path.join(tmp, f"tiny_mnv3_opset{opset}.onnx")
            torch.onnx.export(
                model, torch.from_numpy(inputs[:1]), onnx_path,
                opset_version=opset, input_names=["x"], output_names=["y"],
                dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
            ops = ops_of(onnx_path)
            if expect_op not in ops:
                failures.append(f"opset {opset}: the export has no "
                                f"{expect_op} ({sorted(ops)}); the test "
                                "does not exercise it")
                continue

            fp32_path = os.path.join(tmp, f"fp32_{opset}.npy")
            run([args.esbctl, "run", onnx_path, "--input", x_path,
                 "--output", fp32_path, "--quiet"])
            got = np.load(fp32_path)
            scale = float(np.abs(want).max())
            worst = float(np.abs(got - want).max())
            print(f"opset {opset} ({', '.join(sorted(ops))}): FP32 max "
                  f"|diff| {worst:.3g} of max |y| {scale:.3g}")
            if got.shape != want.shape or worst > 1e-4 * scale:
                failures.append(f"opset {opset}: FP32 outputs differ from "
                                f"PyTorch by {worst:.3g} (limit "
                                f"{1e-4 * scale:.3g})")

            esb_path = os.path.join(tmp, f"esb_{opset}.npy")
            run([args.esbctl, "run", onnx_path, "--input", x_path,
                 "--output", esb_path, "--precision", "esb", "--bits", "6",
                 "--sb", "3", "--act-bits", "6", "--act-sb", "3",
                 "--calib", x_path, "--calib-count", "64", "--quiet"])
            quantized = np.load(esb_path)
            if quantized.shape != want.shape:
                failures.append(f"opset {opset}: quantized output shape "
                                f"{quantized.shape}, want {want.shape}")
                continue
            agree = float(np.mean(quantized.argmax(1) == want.argmax(1)))
            error = float(np.abs(quantized - want).max()) / scale
            print(f"opset {opset}: ESB W6 sb3 / A6 sb3: top-1 agreement with "
                  f"PyTorch {agree:.3f}, max |diff| {error:.3g} of max |y|")
            # Quantized, so not equal; but near, and ranked alike.
            if not 1e-4 < error < 0.25 or agree < 0.8:
                failures.append(f"opset {opset}: quantized outputs are "
                                f"{error:.3g} of max |y| from PyTorch's "
                                "(expected in 1e-4..0.25) with top-1 "
                                f"agreement {agree:.3f} (at least 0.8)")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
