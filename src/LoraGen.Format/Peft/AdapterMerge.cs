using System.Globalization;
using LoraGen.Files;

namespace LoraGen;

/// <summary>Progress of <see cref="AdapterMerge.Merge"/>: tensors written so far, of how many, and the last one.</summary>
public readonly record struct AdapterMergeProgress(int Done, int Total, string Key);

/// <summary>What <see cref="AdapterMerge.Merge"/> wrote.</summary>
/// <param name="MergedWeights">Base weights that received an adapter's update.</param>
/// <param name="ReplacedTensors">Base tensors replaced by the adapter's <c>modules_to_save</c> copies.</param>
/// <param name="CopiedTensors">Tensors copied unchanged.</param>
/// <param name="DroppedTensors">Adapter tensors of a checkpoint saved with LoRA applied, left out.</param>
public sealed record AdapterMergeResult(int MergedWeights, int ReplacedTensors, int CopiedTensors, int DroppedTensors);

/// <summary>
/// Merges an adapter directory into a base checkpoint, by key, without the model's C# class and without
/// TorchSharp: for each adapted module X, <c>X.weight + scaling · B·A</c> (convolutions: B·A reshaped to the
/// kernel; embeddings: <c>(B·A)ᵀ</c>, as PEFT does), computed in float32 (float64 for an F64 base) and written
/// in the base's dtype. See docs/file-formats.md for the key rules.
/// </summary>
public static class AdapterMerge
{
    /// <summary>
    /// Writes <paramref name="outputCheckpoint"/> (atomically) as <paramref name="baseCheckpoint"/> with the
    /// adapter merged in. Everything is checked before the output is written: the adapter against its own config
    /// (as <c>loragen inspect</c> does: A and B paired, floating point, the config's rank), then every adapted
    /// module needs its base weight (<c>X.weight</c>, or <c>X.base_layer.weight</c> in a checkpoint saved with
    /// LoRA applied), with the shape A and B imply and a floating-point dtype. A merged value that is not finite
    /// in the base dtype stops the merge, and the output is not written.
    /// </summary>
    /// <exception cref="LoraFileException">A file is malformed, the adapter disagrees with its config, keys are
    /// missing, or shapes do not fit; the message lists every problem.</exception>
    public static AdapterMergeResult Merge(string baseCheckpoint, string adapterDirectory, string outputCheckpoint,
        AdapterFileOptions? options = null, IProgress<AdapterMergeProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(baseCheckpoint);
        ArgumentNullException.ThrowIfNull(adapterDirectory);
        ArgumentNullException.ThrowIfNull(outputCheckpoint);
        options ??= AdapterFileOptions.Default;
        var (config, adapter) = AdapterDirectory.Open(adapterDirectory);
        using var _ = adapter;
        using var checkpoint = SafetensorsReader.Open(baseCheckpoint);
        var plan = MergePlan.Create(checkpoint, adapter, config, options, adapterDirectory);

        int done = 0;
        var tensors = plan.Outputs.Select(output => new SafetensorsTensor(output.Key, output.Base.DType, output.Base.Shape, () =>
        {
            var data = output.Compute();
            progress?.Report(new AdapterMergeProgress(++done, plan.Outputs.Count, output.Key));
            return data;
        })).ToList();
        var metadata = new Dictionary<string, string>(checkpoint.Metadata) { ["format"] = "pt" };
        SafetensorsWriter.WriteFile(outputCheckpoint, tensors, metadata);
        return plan.Result;
    }

    /// <summary>W + s·Δ for one weight, Δ[o, j] = Σ_r B[o, r]·A[r, j] (or its transpose for embeddings).</summary>
    internal static byte[] MergeWeight(byte[] weight, SafetensorsDType weightType, byte[] a, SafetensorsDType aType,
        byte[] b, SafetensorsDType bType, int rank, bool transposed, double scaling, string key)
    {
        if (weightType == SafetensorsDType.F64)
        {
            var w = FloatCodec.ToDoubles(weight, weightType);
            AddProduct(w, FloatCodec.ToDoubles(a, aType), FloatCodec.ToDoubles(b, bType), rank, transposed, scaling);
            CheckFinite(w, key);
            return FloatCodec.FromDoubles(w);
        }
        var single = FloatCodec.ToSingles(weight, weightType);
        AddProduct(single, FloatCodec.ToSingles(a, aType), FloatCodec.ToSingles(b, bType), rank, transposed, (float)scaling);
        var encoded = FloatCodec.FromSingles(single, weightType);
        // Checked after rounding to the base dtype: an fp16 weight overflows at 65,504.
        CheckFinite(FloatCodec.ToSingles(encoded, weightType), key);
        return encoded;
    }

    private static void AddProduct<T>(T[] w, T[] a, T[] b, int rank, bool transposed, T scaling)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        // A is [r, columns] flattened; B is [rows, r]. Linear/conv: W[rows, columns]. Embedding: W[columns, rows].
        int columns = a.Length / rank;
        int rows = b.Length / rank;
        var row = new T[columns];
        for (int o = 0; o < rows; o++)
        {
            Array.Clear(row);
            for (int r = 0; r < rank; r++)
            {
                T factor = b[o * rank + r];
                int aOffset = r * columns;
                for (int j = 0; j < columns; j++)
                    row[j] += factor * a[aOffset + j];
            }
            for (int j = 0; j < columns; j++)
            {
                int index = transposed ? j * rows + o : o * columns + j;
                w[index] += scaling * row[j];
            }
        }
    }

    private static void CheckFinite<T>(T[] values, string key) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        for (int i = 0; i < values.Length; i++)
            if (!T.IsFinite(values[i]))
                throw new LoraFileException(
                    $"Merging into '{key}' gives a non-finite value at element {i.ToString(CultureInfo.InvariantCulture)}; the output was not written. " +
                    "The adapter has diverged or overflows the base dtype: lower its alpha, or merge into a float32 checkpoint.");
    }
}
