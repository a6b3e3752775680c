using System.Globalization;
using LoraGen.Files;

namespace LoraGen;

/// <summary>Progress of <see cref="AdapterMerge"/>'s merges: tensors written so far, of how many, and the last one.</summary>
public readonly record struct AdapterMergeProgress(int Done, int Total, string Key);

/// <summary>What an <see cref="AdapterMerge"/> merge wrote.</summary>
/// <param name="MergedWeights">Base weights that received an adapter's update (counted once however many adapters update it).</param>
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
    // Two overloads sharing optional trailing parameters (one adapter, several with weights) read best here, as in
    // LoraGen (ApplyLora); RS0026/RS0027 guard binary compatibility of optional parameters, which the API baseline pins.
#pragma warning disable RS0026, RS0027
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
        ArgumentNullException.ThrowIfNull(adapterDirectory);
        return Merge(baseCheckpoint, [(adapterDirectory, 1.0)], outputCheckpoint, options, progress);
    }

    /// <summary>
    /// Writes <paramref name="outputCheckpoint"/> (atomically) as <paramref name="baseCheckpoint"/> with several
    /// adapters merged in, each scaled by its weight: for each adapted module X, <c>X.weight + Σ wᵢ·sᵢ·Bᵢ·Aᵢ</c>
    /// over the adapters that adapt X (sᵢ the adapter's own scaling), computed in float32 (float64 for an F64 base)
    /// and rounded to the base dtype once. A directory saved with several named adapters holds each non-default one
    /// in a sub-folder: give <c>dir/&lt;name&gt;</c> for it.
    /// <para>
    /// Everything is checked before the output is written: every adapter against its own config first, then all of
    /// them against the base (as <see cref="Merge(string, string, string, AdapterFileOptions?, IProgress{AdapterMergeProgress}?)"/>
    /// does for one) and against each other: adapters that adapt the same module must imply the same weight shape,
    /// and a <c>modules_to_save</c> tensor may come from one adapter only (it replaces the base tensor as it is; the
    /// weight does not scale it), nor be a weight another adapter updates.
    /// </para>
    /// </summary>
    /// <param name="baseCheckpoint">The base model's <c>.safetensors</c> checkpoint.</param>
    /// <param name="adapters">Adapter directories with their weights wᵢ (any finite number: 1 merges the adapter
    /// as it is, 0.5 half its update, −1 subtracts it). At least one.</param>
    /// <param name="outputCheckpoint">The merged checkpoint to write.</param>
    /// <param name="options">The adapters' key prefix.</param>
    /// <param name="progress">Tensors written so far.</param>
    /// <exception cref="ArgumentException">No adapter, or a weight that is not finite.</exception>
    /// <exception cref="LoraFileException">A file is malformed, an adapter disagrees with its config, adapters
    /// disagree with the base or with each other; the message lists every problem.</exception>
    public static AdapterMergeResult Merge(string baseCheckpoint, IReadOnlyList<(string Directory, double Weight)> adapters,
        string outputCheckpoint, AdapterFileOptions? options = null, IProgress<AdapterMergeProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(baseCheckpoint);
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(outputCheckpoint);
        if (adapters.Count == 0)
            throw new ArgumentException("Give at least one adapter directory to merge.", nameof(adapters));
        foreach (var (directory, weight) in adapters)
        {
            ArgumentNullException.ThrowIfNull(directory, nameof(adapters));
            if (!double.IsFinite(weight))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"The weight of adapter '{directory}' is {weight}; a weight is a finite number."), nameof(adapters));
        }
        options ??= AdapterFileOptions.Default;
        var sources = new List<MergeSource>();
        try
        {
            foreach (var (directory, weight) in adapters)
            {
                var (config, weights) = AdapterDirectory.Open(directory);
                sources.Add(new MergeSource(directory, config, weights, weight));
            }
            using var checkpoint = SafetensorsReader.Open(baseCheckpoint);
            var plan = MergePlan.Create(checkpoint, sources, options);

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
        finally
        {
            foreach (var source in sources)
                source.Weights.Dispose();
        }
    }

#pragma warning restore RS0026, RS0027

    /// <summary>One adapter's update of a weight: A and B as stored, the rank, and the factor wᵢ·sᵢ.</summary>
    internal readonly record struct WeightUpdate(byte[] A, SafetensorsDType AType, byte[] B, SafetensorsDType BType, int Rank, double Scaling);

    /// <summary>W + s·Δ for one weight, Δ[o, j] = Σ_r B[o, r]·A[r, j] (or its transpose for embeddings).</summary>
    internal static byte[] MergeWeight(byte[] weight, SafetensorsDType weightType, byte[] a, SafetensorsDType aType,
        byte[] b, SafetensorsDType bType, int rank, bool transposed, double scaling, string key) =>
        MergeWeight(weight, weightType, [new WeightUpdate(a, aType, b, bType, rank, scaling)], transposed, key);

    /// <summary>W + Σ sᵢ·Δᵢ for one weight, summed in float32 (float64 for F64) and rounded to the weight's dtype once.</summary>
    internal static byte[] MergeWeight(byte[] weight, SafetensorsDType weightType, IReadOnlyList<WeightUpdate> updates, bool transposed, string key)
    {
        if (weightType == SafetensorsDType.F64)
        {
            var w = FloatCodec.ToDoubles(weight, weightType);
            foreach (var u in updates)
                AddProduct(w, FloatCodec.ToDoubles(u.A, u.AType), FloatCodec.ToDoubles(u.B, u.BType), u.Rank, transposed, u.Scaling);
            CheckFinite(w, key);
            return FloatCodec.FromDoubles(w);
        }
        var single = FloatCodec.ToSingles(weight, weightType);
        foreach (var u in updates)
            AddProduct(single, FloatCodec.ToSingles(u.A, u.AType), FloatCodec.ToSingles(u.B, u.BType), u.Rank, transposed, (float)u.Scaling);
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
