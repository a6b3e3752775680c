#!/usr/bin/env python3
"""Reads loragen.json and peft.json from a GPU run's folder and prints a Markdown summary with ratios."""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        return {"error": str(error)}


def key(step):
    return step["Mode"], step["DType"].lower()


def ms(step):
    return "%.2f" % step["MillisecondsPerStep"] if step else "—"


def losses(step):
    return "%.3f → %.3f" % (step["FirstLoss"], step["LastLoss"]) if step else "—"


def main(folder):
    ours, peer = load(os.path.join(folder, "loragen.json")), load(os.path.join(folder, "peft.json"))
    print("# GPU run summary\n")
    print("- TorchSharp loads against this LibTorch: %s" % ours.get("torchsharp_loads"))
    if ours.get("load_error"):
        print("- load error: `%s` (full text in loragen.json)" % ours["load_error"].splitlines()[0])
    print("- CUDA available to TorchSharp: %s; to PyTorch: %s (torch %s, %s)"
          % (ours.get("cuda_available"), peer.get("cuda_available"), peer.get("torch"), peer.get("gpu", "no GPU name")))
    ours_steps = {key(s): s for s in ours.get("steps", [])}
    peer_steps = {key(s): s for s in peer.get("steps", [])}
    print("\n| step | dtype | LoraGen ms | PyTorch ms | LoraGen / PyTorch | LoraGen loss | PyTorch loss |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("lora", "full"):
        for dtype in ("float32", "bfloat16"):
            a, b = ours_steps.get((mode, dtype)), peer_steps.get((mode, dtype))
            ratio = "%.2f" % (a["MillisecondsPerStep"] / b["MillisecondsPerStep"]) if a and b else "—"
            print("| %s | %s | %s | %s | %s | %s | %s |" % (mode, dtype, ms(a), ms(b), ratio, losses(a), losses(b)))
    for name, report in (("LoraGen", ours), ("PyTorch", peer)):
        for s in report.get("steps", []):
            if s["Mode"] == "lora":
                full = next((f for f in report["steps"] if f["Mode"] == "full" and f["DType"] == s["DType"]), None)
                if full:
                    print("\n%s %s: LoRA step / full step = %.2f"
                          % (name, s["DType"], s["MillisecondsPerStep"] / full["MillisecondsPerStep"]))
    errors = [k for k in ours if k.startswith("error_")]
    if errors:
        print("\nFailures: " + ", ".join(errors) + " (see loragen.json)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "gpu-results")
