using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>What <see cref="QuantizedCheckpoint.Read"/> produced: the quantized Linear layers by module path
/// (the key without <c>.weight</c>), and every other tensor as read (the caller owns and disposes them all).</summary>
internal sealed class QuantizedCheckpointContents : IDisposable
{
    public Dictionary<string, QuantizedLinear> Layers { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, Tensor> Tensors { get; } = new(StringComparer.Ordinal);

    /// <summary>The largest transient float tensor read while loading (bytes), for memory accounting.</summary>
    public long LargestTensorBytes { get; internal set; }

    public void Dispose()
    {
        foreach (var layer in Layers.Values)
            layer.Dispose();
        foreach (var tensor in Tensors.Values)
            tensor.Dispose();
        Layers.Clear();
        Tensors.Clear();
    }
}

/// <summary>
/// Loading straight into 4-bit (or 8-bit): a checkpoint is read one tensor at a time and every selected Linear
/// weight is quantized as soon as it is read, its float copy disposed before the next tensor is read. Peak memory
/// is then the quantized model plus the largest single tensor (and its float32 conversion when the file holds
/// bf16/f16) plus the quantizer's temporaries for that tensor.
/// </summary>
/// <remarks>Not yet connected to <c>LoadPretrained</c>: the caller maps the layer paths onto its modules.</remarks>
internal static class QuantizedCheckpoint
{
    /// <summary>Reads all of <paramref name="file"/>. A 2-D floating-point tensor named <c>P.weight</c> with
    /// <paramref name="quantize"/>(P) true becomes <c>Layers[P]</c> (with <c>P.bias</c> as its bias when the file
    /// has one); all other tensors go to <c>Tensors</c> unchanged.</summary>
    public static QuantizedCheckpointContents Read(ITensorSource file, Func<string, bool> quantize, QuantizationKind kind)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(quantize);
        var contents = new QuantizedCheckpointContents();
        try
        {
            var infos = file.Tensors.ToList();
            var consumedBiases = new HashSet<string>(StringComparer.Ordinal);
            foreach (var info in infos)
            {
                if (!IsQuantizedWeight(info, quantize, out var prefix))
                    continue;
                contents.LargestTensorBytes = Math.Max(contents.LargestTensorBytes, info.ByteLength);
                using var weight = TensorBytes.Read(file, info);
                Tensor? bias = null;
                var biasInfo = file.Find(prefix + ".bias");
                if (biasInfo is not null)
                {
                    bias = TensorBytes.Read(file, biasInfo);
                    consumedBiases.Add(biasInfo.Name);
                }
                using (bias)
                    contents.Layers.Add(prefix, QuantizedLinear.FromWeight(weight, bias, kind));
            }
            foreach (var info in infos)
            {
                if (consumedBiases.Contains(info.Name) || IsQuantizedWeight(info, quantize, out _))
                    continue;
                contents.LargestTensorBytes = Math.Max(contents.LargestTensorBytes, info.ByteLength);
                contents.Tensors.Add(info.Name, TensorBytes.Read(file, info));
            }
            return contents;
        }
        catch
        {
            contents.Dispose();
            throw;
        }
    }

    private static bool IsQuantizedWeight(SafetensorsTensorInfo info, Func<string, bool> quantize, out string prefix)
    {
        prefix = "";
        if (!info.Name.EndsWith(".weight", StringComparison.Ordinal) || info.Shape.Count != 2)
            return false;
        if (!TensorBytes.IsFloatingPoint(TensorBytes.ToTorch(info.DType)))
            return false;
        prefix = info.Name[..^".weight".Length];
        return quantize(prefix);
    }
}
