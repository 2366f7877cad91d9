#!/usr/bin/python3
"""Exports torchvision's models to ONNX with random weights, no downloads.

The zoo is the corpus of models users bring: the classification families
torchvision ships and two segmentation networks. Each model is built with
random weights (seeded, so two exports of one model are the same bytes),
put in eval mode and exported by torch.onnx with a dynamic batch axis. Next
to each model.onnx goes model.npy, a batch of inputs, and model.ref.npy,
PyTorch's output on it, so a test can compare without PyTorch.

  export_zoo.py --out DIR [--models resnet18,mobilenet_v3_small] [--opset 13]
                [--batch 4]
  export_zoo.py --list
"""
import argparse
import os
import sys

import numpy as np
import torch
import torchvision

# name -> (constructor, input side). The classification models take
# 224x224 images except Inception v3 (299); the segmentation heads are
# exported at 224 too, their output is the per-pixel class map.
CLASSIFICATION = {
    "alexnet": 224,
    "vgg11": 224,
    "resnet18": 224,
    "resnet50": 224,
    "resnext50_32x4d": 224,
    "wide_resnet50_2": 224,
    "squeezenet1_1": 224,
    "densenet121": 224,
    "googlenet": 224,
    "inception_v3": 299,
    "mobilenet_v2": 224,
    "mobilenet_v3_small": 224,
    "mobilenet_v3_large": 224,
    "mnasnet0_5": 224,
    "shufflenet_v2_x0_5": 224,
    "efficientnet_b0": 224,
    "regnet_y_400mf": 224,
    "convnext_tiny": 224,
}
SEGMENTATION = {
    "lraspp_mobilenet_v3_large": 224,
    "deeplabv3_mobilenet_v3_large": 224,
}
ZOO = {**CLASSIFICATION, **SEGMENTATION}


class FirstOutput(torch.nn.Module):
    """Segmentation models return a dict; the export takes its "out"."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def build(name):
    kwargs = {"weights": None}
    if name in SEGMENTATION:
        kwargs["weights_backbone"] = None
        kwargs["num_classes"] = 21
        model = getattr(torchvision.models.segmentation, name)(**kwargs)
        return FirstOutput(model)
    if name in ("googlenet", "inception_v3"):
        # Without pretrained weights these default to auxiliary heads and
        # scipy-initialized weights; the exported graph is the eval one.
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = True
    return getattr(torchvision.models, name)(**kwargs)


def randomize_batchnorm(model, generator):
    """Random running statistics, so folded BatchNorms are not identities."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(
                    torch.randn(m.running_mean.shape, generator=generator) * 0.1)
                m.running_var.copy_(
                    torch.rand(m.running_var.shape, generator=generator) + 0.5)


def export(name, out_dir, opset, batch):
    side = ZOO[name]
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = build(name)
    randomize_batchnorm(model, generator)
    model.eval()
    x = torch.randn(batch, 3, side, side, generator=generator)
    with torch.no_grad():
        ref = model(x)
    path = os.path.join(out_dir, name + ".onnx")
    torch.onnx.export(
        model, x, path, opset_version=opset, input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    np.save(os.path.join(out_dir, name + ".npy"), x.numpy())
    np.save(os.path.join(out_dir, name + ".ref.npy"), ref.numpy())
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="output folder (created)")
    parser.add_argument("--models", default="",
                        help="comma-separated names (default: the whole zoo)")
    parser.add_argument("--opset", type=int, default=13)
    parser.add_argument("--batch", type=int, default=4,
                        help="items in the reference batch")
    parser.add_argument("--list", action="store_true",
                        help="print the zoo's names and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(ZOO))
        return 0
    if not args.out:
        parser.error("--out is required")
    names = [n for n in args.models.split(",") if n] or list(ZOO)
    unknown = [n for n in names if n not in ZOO]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; "
                     f"--list prints the zoo")
    if args.batch < 1:
        parser.error("--batch must be >= 1")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    for n in names:
        print(f"export_zoo: {n}", file=sys.stderr, flush=True)
        export(n, args.out, args.opset, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
