#!/usr/bin/env bash
# The one command for the GPU machine, run from the unpacked bundle (see eng/gpu/README.md):
#   OUT=/some/dir bash loragen-gpu/run.sh
# In one run: whether TorchSharp loads against PyTorch's LibTorch there and whether CUDA is available;
# the LoRA and full training steps on CUDA in float32 and bfloat16 (LoraGen); the main sample in --quick
# mode on CUDA; the same MLP workload with PEFT in Python on the same GPU; a summary with the ratios.
# Everything lands in $OUT (default: ./gpu-results). It never stops at the first failure: a failure is a finding.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$PWD/gpu-results}
mkdir -p "$out"
steps=${STEPS:-50}

{ date -u; uname -a; nvidia-smi; } > "$out/machine.txt" 2>&1

torchlib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>>"$out/machine.txt")
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" >> "$out/machine.txt" 2>&1
export LD_LIBRARY_PATH="$torchlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# What the dynamic loader makes of TorchSharp's native library against this LibTorch (symbols, versions).
ldd -r "$here/app/libLibTorchSharp.so" > "$out/ldd-libLibTorchSharp.txt" 2>&1

echo "== LoraGen (TorchSharp) =="
timeout 600 "$here/app/GpuCheck" --out "$out" --device auto --steps "$steps" 2>&1 | tee "$out/loragen.log"
if [ -x "$here/app/FineTune" ]; then
  echo "== main sample, --quick on CUDA =="
  timeout 600 "$here/app/FineTune" --quick --device cuda --out "$out/sample" 2>&1 | tee "$out/sample.log"
fi
echo "== PyTorch + PEFT =="
timeout 600 python3 "$here/peft_peer.py" --out "$out" --device auto --steps "$steps" 2>&1 | tee "$out/peft.log"
python3 "$here/summarize.py" "$out" | tee "$out/summary.md"
