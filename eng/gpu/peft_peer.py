#!/usr/bin/env python3
"""The GpuCheck workload in PyTorch eager, with LoRA from Hugging Face PEFT where it is installed.

The benchmark MLP (4 x Linear(1024, 1024) + GELU, batch 64, rank 8 on every Linear, AdamW lr 1e-3),
LoRA and full fine-tuning, float32 and bfloat16, timed exactly like eng/gpu/GpuCheck: a few warm-up
steps, then N steps between two loss read-backs (which synchronise the device). Writes peft.json.
Without PEFT (e.g. Debian's python3-torch on the CPU machine) the LoRA layers use PEFT's formula,
y = W x + b + (alpha / r) * B(A(x)), written out here, and the JSON says so.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTH, BATCH, RANK = 1024, 64, 8


def mlp():
    return nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(WIDTH, WIDTH), nn.GELU())][:-1])


class FormulaLora(nn.Module):
    """PEFT's LoRA forward for one Linear, without PEFT: A Kaiming-uniform, B zeros, scaling alpha / r."""

    def __init__(self, base, r=RANK, alpha=RANK):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, r, bias=False, device=base.weight.device, dtype=torch.float32)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, device=base.weight.device, dtype=torch.float32)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return (self.base(x) + self.lora_B(self.lora_A(x.to(torch.float32))) * self.scaling).to(x.dtype)


def with_lora(model):
    try:
        from peft import LoraConfig, get_peft_model
        targets = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
        return get_peft_model(model, LoraConfig(r=RANK, lora_alpha=RANK, target_modules=targets)), "peft"
    except ImportError:
        for i, m in enumerate(model):
            if isinstance(m, nn.Linear):
                model[i] = FormulaLora(m)
        return model, "formula (peft not installed)"


def run(lora, device, dtype, warmup, steps):
    torch.manual_seed(0)
    model = mlp().to(device=device, dtype=dtype)
    implementation = "full"
    if lora:
        model, implementation = with_lora(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)  # TorchSharp's AdamW default
    x = torch.randn(BATCH, WIDTH, device=device, dtype=dtype)
    target = torch.randn(BATCH, WIDTH, device=device, dtype=dtype)

    def step(read_back):
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x).float(), target.float())
        loss.backward()
        optimizer.step()
        return loss.item() if read_back else float("nan")

    first = step(True)
    for _ in range(warmup - 1):
        step(False)
    step(True)
    start = time.perf_counter()
    for _ in range(steps - 1):
        step(False)
    last = step(True)
    elapsed = time.perf_counter() - start
    return {
        "Mode": "lora" if lora else "full", "Device": str(device), "DType": str(dtype).replace("torch.", ""),
        "MillisecondsPerStep": 1000 * elapsed / steps, "FirstLoss": first, "LastLoss": last,
        "TrainableParameters": sum(p.numel() for p in params), "Implementation": implementation,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="gpu-results")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    os.makedirs(args.out, exist_ok=True)
    report = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
              "threads": torch.get_num_threads(), "steps": []}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    for dtype in (torch.float32, torch.bfloat16):
        for lora in (True, False):
            result = run(lora, device, dtype, warmup=5, steps=args.steps)
            report["steps"].append(result)
            print(f"{result['Mode']:4} {result['DType']:8} on {device}: {result['MillisecondsPerStep']:.2f} ms/step, "
                  f"loss {result['FirstLoss']:.4f} -> {result['LastLoss']:.4f} ({result['Implementation'] if lora else 'full'})")
    with open(os.path.join(args.out, "peft.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
