using System.Reflection;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Frees the CPU weights TorchSharp's native layers keep after being built on the meta device.
/// </summary>
/// <remarks>
/// A native layer (Embedding, among TorchSharp 0.107's) is made by libtorch with its weight on the CPU and then moved
/// to the default device: TorchSharp makes a meta copy and installs it through the layer's setter, which replaces the
/// layer's <c>weight</c> member but not the entry in libtorch's own parameter registry. That entry keeps the CPU
/// tensor for as long as the layer lives (measured: an Embedding(30522, 384) built by <see cref="EmptyWeights"/> held
/// 46.9 MB, freed only by disposing it). Nothing reads the entry afterwards (forward uses the member; TorchSharp's
/// parameters, state dict and device moves use its own registry), so its storage is replaced by an empty tensor.
/// </remarks>
internal static class StaleNativeTensors
{
    private const BindingFlags Protected = BindingFlags.Instance | BindingFlags.NonPublic;

    // Module._named_parameters / _named_buffers: what libtorch's registry of the module's native side holds.
    private static readonly MethodInfo? NativeParameters = typeof(nn.Module).GetMethod("_named_parameters", Protected, Type.EmptyTypes);
    private static readonly MethodInfo? NativeBuffers = typeof(nn.Module).GetMethod("_named_buffers", Protected, Type.EmptyTypes);

    /// <summary>For every module of <paramref name="model"/>: a tensor with data in the native registry whose
    /// TorchSharp counterpart (same name) is on the meta device gets an empty storage.</summary>
    public static void Release(nn.Module model)
    {
        if (NativeParameters is null || NativeBuffers is null)
            return;   // another TorchSharp: nothing to reach, and nothing worse than before
        foreach (var module in model.named_modules().Select(entry => entry.module).Prepend(model))
        {
            var parameters = module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);
            var buffers = module.named_buffers().ToDictionary(b => b.name, b => b.buffer, StringComparer.Ordinal);
            foreach (var (name, native) in (ValueTuple<string, Parameter>[])NativeParameters.Invoke(module, null)!)
                ReleaseIfStale(native, parameters.GetValueOrDefault(name));
            foreach (var (name, native) in (ValueTuple<string, Tensor>[])NativeBuffers.Invoke(module, null)!)
                ReleaseIfStale(native, buffers.GetValueOrDefault(name));
        }
    }

    private static void ReleaseIfStale(Tensor native, Tensor? managed)
    {
        using (native)
        {
            if (native.is_meta || native.numel() == 0 || managed is not { is_meta: true })
                return;
            using var _ = no_grad();
            using var nothing = empty(0, native.dtype, native.device);
            native.set_(nothing);
        }
    }
}
