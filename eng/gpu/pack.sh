#!/usr/bin/env bash
# Builds the bundle for the GPU machine: artifacts/gpu/loragen-gpu.tar.xz (see eng/gpu/README.md).
# Self-contained linux-x64 publishes of GpuCheck and the main sample, without LibTorch's CPU natives
# (LibTorch comes from PyTorch's torch/lib there), plus run.sh, peft_peer.py and summarize.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
stage="$root/artifacts/gpu/loragen-gpu"
bundle="$root/artifacts/gpu/loragen-gpu.tar.xz"
rm -rf "$stage" "$bundle"
mkdir -p "$stage/app"

publish() {
  dotnet publish "$1" -c Release -r linux-x64 --self-contained -p:InvariantGlobalization=true -o "$stage/app" -nologo -v quiet
}
publish "$root/eng/gpu/GpuCheck/GpuCheck.csproj"
sample="$root/samples/FineTune/FineTune.csproj"
[ -f "$sample" ] && publish "$sample"

# The sample references TorchSharp-cpu; its LibTorch CPU libraries must not shadow PyTorch's CUDA ones.
find "$stage/app" -maxdepth 1 \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*.so*' \
  -o -name 'libshm.so' -o -name 'libaoti_custom_ops.so' -o -name 'libbackend_with_compiler.so' \
  -o -name 'libjitbackend_test.so' -o -name 'libnnapi_backend.so' \) -delete
[ -f "$stage/app/libLibTorchSharp.so" ] || { echo "libLibTorchSharp.so missing from the publish" >&2; exit 1; }

cp "$root/eng/gpu/run.sh" "$root/eng/gpu/peft_peer.py" "$root/eng/gpu/summarize.py" "$stage/"
tar -C "$root/artifacts/gpu" -cJf "$bundle" loragen-gpu
size=$(stat -c %s "$bundle")
echo "bundle: $bundle ($((size / 1024 / 1024)) MiB)"
[ "$size" -lt $((60 * 1024 * 1024)) ] || { echo "the bundle is over 60 MiB: the device tool carries 64 MiB at most" >&2; exit 1; }
