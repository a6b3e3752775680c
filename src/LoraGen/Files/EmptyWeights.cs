using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Builds a model without allocating its weights (accelerate's <c>init_empty_weights</c>): every tensor the constructor
/// creates is on libtorch's meta device, which records shapes and dtypes and holds no data. Load it with
/// <see cref="CheckpointExtensions.LoadPretrained"/>, which gives each tensor CPU memory as it copies the file's value
/// in, and with <c>PretrainedLoadOptions { Quantize = ... }</c> builds the quantized Linears straight from the file:
/// the float model never exists, so peak memory is the loaded model plus the largest tensor.
/// </summary>
/// <example>
/// <code>
/// var model = EmptyWeights.Create(() => new LlamaForCausalLM(config));
/// model.LoadPretrained("model.safetensors.index.json", new PretrainedLoadOptions { Quantize = QuantizationKind.Nf4 });
/// model.ApplyLora(new AdapterConfig { Rank = 16, TargetModules = ["q_proj", "v_proj"] });
/// </code>
/// </example>
/// <remarks>
/// A tensor the constructor computes rather than loads (a position-id buffer made with <c>arange</c>, say) has no value
/// on the meta device either: LoadPretrained refuses to leave such a tensor empty and names it. Create those on the
/// CPU explicitly (<c>device: CPU</c>) in the constructor, or keep them in the checkpoint. TorchSharp's default device
/// is process-wide: while <see cref="Create"/> runs, tensors other threads create land on the meta device too.
/// </remarks>
public static class EmptyWeights
{
    private static readonly object DefaultDeviceLock = new();

    /// <summary>Runs <paramref name="build"/> with the meta device as the default device, then restores the previous
    /// default. The model it returns has no data until LoadPretrained fills it.</summary>
    public static T Create<T>(Func<T> build) where T : nn.Module
    {
        ArgumentNullException.ThrowIfNull(build);
        lock (DefaultDeviceLock)
        {
            var previous = get_default_device();
            set_default_device(META);
            try
            {
                var model = build();
                // TorchSharp's native layers (Embedding, ...) make their weight on the CPU and keep it after the move
                // to meta, in a registry nothing reads: free it before a load needs that memory.
                StaleNativeTensors.Release(model);
                return model;
            }
            finally
            {
                set_default_device(previous);
            }
        }
    }
}
