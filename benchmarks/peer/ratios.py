"""Reads `key value` reports of both harnesses (one file per run; several runs give medians) and prints
the ratios of shared/DESIGN.md's performance targets.

    python3 ratios.py --loragen run1.txt run2.txt --pytorch run1.txt run2.txt
"""
import argparse
import statistics


def read(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(dict(line.split(None, 1) for line in f if " " in line.strip()))
    keys = set.intersection(*(set(r) for r in runs))
    result = {}
    for key in keys:
        try:
            result[key] = statistics.median(float(r[key]) for r in runs)
        except ValueError:
            result[key] = runs[0][key].strip()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--loragen", nargs="+", required=True)
    parser.add_argument("--pytorch", nargs="+", required=True)
    args = parser.parse_args()
    lg, pt = read(args.loragen), read(args.pytorch)
    print(f"threads: LoraGen {lg['threads']}, PyTorch {pt['threads']} (torch {pt.get('torch_version', '?')}); "
          f"medians of {len(args.loragen)} LoraGen and {len(args.pytorch)} PyTorch runs")
    rows = [("BLAS alone: LoraGen mm / PyTorch mm [64x1024]x[1024x1024]",
             lg["blas.mm_64x1024x1024_ms"] / pt["blas.mm_64x1024x1024_ms"], "(context)")]
    # The step targets are quoted for (a) and (c); (b), at width 64, is about per-op overhead (docs/performance.md).
    for w in ("mlp", "transformer", "bert"):
        if f"{w}.step.lora_ms" not in lg:
            continue
        targeted = w != "transformer"
        for name, h in (("LoraGen", lg), ("PyTorch", pt)):
            rows.append((f"{w}: LoRA step / full step [{name}]", h[f"{w}.step.lora_ms"] / h[f"{w}.step.full_ms"],
                         "<= 0.70" if targeted else ""))
        rows.append((f"{w}: LoraGen LoRA step / PyTorch LoRA step", lg[f"{w}.step.lora_ms"] / pt[f"{w}.step.lora_ms"],
                     "<= 1.0" if targeted else ""))
        rows.append((f"{w}: LoraGen full step / PyTorch full step", lg[f"{w}.step.full_ms"] / pt[f"{w}.step.full_ms"], ""))
        for name, h in (("LoraGen", lg), ("PyTorch", pt)):
            rows.append((f"{w}: merged / base inference [{name}]", h[f"{w}.inference.merged_ms"] / h[f"{w}.inference.base_ms"],
                         "1.00 +- 0.02"))
            rows.append((f"{w}: unmerged / base inference [{name}]", h[f"{w}.inference.unmerged_ms"] / h[f"{w}.inference.base_ms"], ""))
        for name, h in (("LoraGen", lg), ("PyTorch", pt)):
            rows.append((f"{w}: LoRA / full live tensor bytes [{name}]",
                         h[f"{w}.memory.lora.tensor_mb"] / h[f"{w}.memory.full.tensor_mb"], "<= 0.5"))
            rows.append((f"{w}: LoRA / full peak RSS over baseline [{name}]",
                         h[f"{w}.memory.lora.peak_rss_over_baseline_mb"] / h[f"{w}.memory.full.peak_rss_over_baseline_mb"], "<= 0.5"))
    width = max(len(r[0]) for r in rows)
    print(f"{'ratio':<{width}}  {'value':>6}  target")
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:6.3f}  {target}")
    print()
    print(f"{'milliseconds (median)':<{width}}  {'LoraGen':>8}  {'PyTorch':>8}")
    for key in sorted(k for k in lg if "_ms" in k and not k.startswith("generator")):
        print(f"{key:<{width}}  {lg[key]:8.2f}  {pt[key] if key in pt else float('nan'):8.2f}")
    if "generator.first_run_ms" in lg:
        print()
        print(f"generator, {lg['generator.classes']:.0f} classes: first run {lg['generator.first_run_ms']:.1f} ms on a fresh compilation, "
              f"{lg['generator.first_run_bound_compilation_ms']:.1f} ms on a bound one (target < 100 ms); "
              f"after a method-body edit {lg['generator.edit_run_ms']:.1f} ms, steps re-run: {lg['generator.edit_steps_rerun']:.0f} (target 0)")


if __name__ == "__main__":
    main()
