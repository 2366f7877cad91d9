#!/usr/bin/python3
"""Train and export the two Fashion-MNIST demo CNNs used with ESB.

What it does
  * reads Fashion-MNIST from the gzip IDX files in /usr/share/datasets/fashion-mnist/
  * trains, on CPU with fixed seeds:
      lenet  - LeNet-like CNN (2 conv + 2 fully connected layers)
      resnet - small ResNet (16/32/64 channels, BatchNorm, Add skips)
  * measures FP32 top-1 on the full 10k test set (PyTorch, eval mode)
  * exports ONNX (opset 13, input "input" [N,1,28,28], output "logits" [N,10],
    dynamic batch axis) with metadata_props input_mean, input_std, top1_fp32;
    BatchNormalization nodes are kept (not folded) in the resnet graph
  * writes lenet.onnx, resnet.onnx, accuracy.json and resnet_stage3_conv.npy
    (the float32 weight of one 64->64 3x3 conv of the last resnet stage)

Input normalization: x = (pixel / 255 - MEAN) / STD.

Run (Debian's python3-torch / python3-onnx / python3-numpy are required):
    /usr/bin/python3 models/train_demo_models.py               # writes into models/
    /usr/bin/python3 models/train_demo_models.py --out /tmp/m --quick   # smoke test
"""
import argparse
import gzip
import io
import json
import os
import random
import time
from collections import Counter

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"
MEAN = 0.2860
STD = 0.3530
SEED = 0
OPSET = 13
BATCH = 128
MAX_ONNX_BYTES = 2 * 1024 * 1024


# ---------------------------------------------------------------- data
def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    assert magic >> 8 == 0x08, f"{path}: not an unsigned-byte IDX file"
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load_split(split):
    images = read_idx(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, f"{split}-labels-idx1-ubyte.gz"))
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    x = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)  # [N,1,28,28]
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ---------------------------------------------------------------- models
class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(32 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 16x14x14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 32x5x5
        x = F.relu(self.fc1(self.flatten(x)))
        return self.fc2(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.proj is None else self.proj(x)
        return F.relu(out + skip)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        self.stage1 = BasicBlock(16, 16, 1)  # 28x28
        self.stage2 = BasicBlock(16, 32, 2)  # 14x14
        self.stage3 = BasicBlock(32, 64, 2)  # 7x7
        self.pool = nn.AdaptiveAvgPool2d(1)  # -> GlobalAveragePool
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(self.flatten(self.pool(x)))


# ---------------------------------------------------------------- train / eval
def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(model, x, y, epochs, lr, max_batches=None):
    gen = torch.Generator().manual_seed(SEED)
    steps_per_epoch = (len(x) + BATCH - 1) // BATCH
    if max_batches:
        steps_per_epoch = min(steps_per_epoch, max_batches)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        t0, total, correct, loss_sum = time.time(), 0, 0, 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * BATCH:(step + 1) * BATCH]
            xb, yb = x[idx], y[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            total += len(idx)
        print(f"  epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.4f} "
              f"train acc {correct / total:.4f} ({time.time() - t0:.0f}s)", flush=True)


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    correct = 0
    for i in range(0, len(x), 1000):
        correct += (model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    return correct / len(x)


# ---------------------------------------------------------------- export
def inline_identity_initializers(m):
    """Replace Identity(initializer) nodes with a copy of the initializer.

    The exporter shares initializers with equal values (e.g. the two BN biases
    feeding one Add receive identical gradients and stay equal) and re-exposes
    them through Identity nodes; give each consumer its own tensor instead.
    """
    inits = {t.name: t for t in m.graph.initializer}
    for node in [n for n in m.graph.node if n.op_type == "Identity"]:
        if node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            m.graph.initializer.append(copy)
            m.graph.node.remove(node)


def export_onnx(model, path, top1):
    model.eval()
    buf = io.BytesIO()
    # PRESERVE on an eval-mode model exports inference-mode ops but skips the
    # eval peephole pass that would fold BatchNorm into the preceding Conv.
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), buf,
        opset_version=OPSET,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False)
    m = onnx.load_from_string(buf.getvalue())
    inline_identity_initializers(m)
    for key, value in (("input_mean", f"{MEAN:.4f}"), ("input_std", f"{STD:.4f}"),
                       ("top1_fp32", f"{top1:.4f}")):
        entry = m.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(m)
    onnx.save(m, path)
    size = os.path.getsize(path)
    assert size < MAX_ONNX_BYTES, f"{path}: {size} bytes exceeds 2 MB"
    return m


def op_counts(m):
    return dict(sorted(Counter(n.op_type for n in m.graph.node).items()))


# ---------------------------------------------------------------- main
def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here, help="output directory (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs per model (default: 6)")
    ap.add_argument("--quick", action="store_true",
                    help="one short epoch per model (smoke test, low accuracy)")
    args = ap.parse_args()

    torch.set_num_threads(2)
    # Guard against slow denormal arithmetic as the learning rate anneals.
    torch.set_flush_denormal(True)
    try:
        torch.use_deterministic_algorithms(True)
    except Exception as exc:  # pragma: no cover
        print(f"warning: deterministic algorithms unavailable: {exc}")
    os.makedirs(args.out, exist_ok=True)

    x_train, y_train = load_split("train")
    x_test, y_test = load_split("t10k")
    print(f"train {tuple(x_train.shape)}, test {tuple(x_test.shape)}")

    specs = [("lenet", LeNet, 6, 2e-3), ("resnet", ResNet, 6, 4e-3)]
    results, t_start = {}, time.time()
    for name, cls, default_epochs, lr in specs:
        epochs = 1 if args.quick else (args.epochs or default_epochs)
        seed_everything(SEED)
        model = cls()
        print(f"{name}: training {epochs} epoch(s)", flush=True)
        t0 = time.time()
        train(model, x_train, y_train, epochs, lr, max_batches=50 if args.quick else None)
        top1 = evaluate(model, x_test, y_test)
        params = sum(p.numel() for p in model.parameters())
        m = export_onnx(model, os.path.join(args.out, f"{name}.onnx"), top1)
        ops = op_counts(m)
        if name == "resnet":
            assert ops.get("BatchNormalization", 0) > 0, "BatchNormalization was folded"
            w = model.stage3.conv2.weight.detach().numpy().astype(np.float32)
            np.save(os.path.join(args.out, "resnet_stage3_conv.npy"), np.ascontiguousarray(w))
        results[name] = {"top1_fp32": round(top1, 4), "test_images": len(x_test),
                         "params": params}
        print(f"{name}: top1_fp32 {top1:.4f}, {params} params, "
              f"{time.time() - t0:.0f}s, ops {ops}", flush=True)

    with open(os.path.join(args.out, "accuracy.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print(f"\nsummary (opset {OPSET}, total {time.time() - t_start:.0f}s):")
    for name, r in results.items():
        print(f"  {name:7s} top1_fp32 {r['top1_fp32']:.4f}  params {r['params']}")


if __name__ == "__main__":
    main()
