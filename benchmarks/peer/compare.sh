#!/usr/bin/env bash
# LoraGen vs PyTorch eager, back to back, same workloads and thread count; prints the ratios of
# shared/DESIGN.md's targets. Usage (from anywhere):
#   benchmarks/peer/compare.sh                 # 1 thread, 2 runs of each harness, medians
#   THREADS="1 2" RUNS=3 benchmarks/peer/compare.sh
#   ITERATIONS=30 WARMUP=5 WORKLOADS=mlp benchmarks/peer/compare.sh
#   WORKLOADS=bert ITERATIONS=15 benchmarks/peer/compare.sh   # workload (c), not in the default set
# Installs Debian's python3-torch (1.13, CPU) and OpenBLAS if missing (needs root): without OpenBLAS
# Debian's torch falls back to the reference BLAS and runs ~10x slower, which would flatter LoraGen.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
threads="${THREADS:-1}"
runs="${RUNS:-2}"
common=(--iterations "${ITERATIONS:-30}" --warmup "${WARMUP:-5}" --workloads "${WORKLOADS:-mlp,transformer}")
python=/usr/bin/python3   # Debian's interpreter: python3-torch lives in its dist-packages

if ! "$python" -c "import torch" 2>/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then
  apt-get update -qq && apt-get install -y -qq python3-torch libopenblas0-pthread >/dev/null
fi

dotnet build -c Release "$root/benchmarks/LoraGen.Benchmarks/LoraGen.Benchmarks.csproj" -v quiet -nologo >/dev/null
harness="$root/benchmarks/LoraGen.Benchmarks/bin/Release/net10.0/LoraGen.Benchmarks.dll"

out="$(mktemp -d)"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for t in $threads; do
  for r in $(seq 1 "$runs"); do
    # torch.set_num_threads does not reach OpenBLAS's own pool (it starts one thread per core), so the
    # BLAS libraries get the thread count from the environment too: measured, PyTorch's "1-thread" product
    # ran on 2 cores without this (0.59 ms, against 1.12 ms on one).
    blas_threads=(env OPENBLAS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" MKL_NUM_THREADS="$t")
    "${blas_threads[@]}" dotnet "$harness" compare --threads "$t" "${common[@]}" > "$out/loragen-$t-$r.txt"
    "${blas_threads[@]}" "$python" "$here/peer.py" compare --threads "$t" "${common[@]}" > "$out/pytorch-$t-$r.txt"
  done
  echo
  echo "== $t thread(s) =="
  "$python" "$here/ratios.py" --loragen "$out"/loragen-"$t"-*.txt --pytorch "$out"/pytorch-"$t"-*.txt
done
echo
echo "raw reports: $out"
