using System.Globalization;
using LoraGen.Files;

namespace LoraGen;

/// <summary>One tensor of a merged checkpoint: its key, the base entry it comes from, and how to compute its bytes.</summary>
internal sealed record MergeOutput(string Key, SafetensorsTensorInfo Base, Func<byte[]> Compute);

/// <summary>Everything <see cref="AdapterMerge"/> checks before it writes: which base weight each adapter
/// updates, with which rank and scaling, and which tensors are copied, replaced or dropped.</summary>
internal sealed class MergePlan
{
    private const int ProblemsShown = 12;

    private MergePlan(List<MergeOutput> outputs, AdapterMergeResult result)
    {
        Outputs = outputs;
        Result = result;
    }

    public List<MergeOutput> Outputs { get; }

    public AdapterMergeResult Result { get; }

    private sealed class AdapterPair
    {
        public SafetensorsTensorInfo? A;
        public SafetensorsTensorInfo? B;
        public bool Embedding;
    }

    public static MergePlan Create(SafetensorsReader checkpoint, SafetensorsReader adapter, AdapterConfig config,
        AdapterFileOptions options, string adapterName)
    {
        var problems = new List<string>();
        var pairs = new Dictionary<string, AdapterPair>(StringComparer.Ordinal);
        var replacements = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
        foreach (var tensor in adapter.Tensors)
        {
            if (!tensor.Name.StartsWith(options.KeyPrefix, StringComparison.Ordinal))
            {
                problems.Add($"adapter key '{tensor.Name}' does not start with the prefix '{options.KeyPrefix}'");
                continue;
            }
            string rest = tensor.Name[options.KeyPrefix.Length..];
            if (AdapterMerge.SplitAdapterKey(rest) is not var (path, suffix))
            {
                replacements[rest] = tensor; // a modules_to_save tensor: replaces the base's
                continue;
            }
            var pair = pairs.TryGetValue(path, out var found) ? found : pairs[path] = new AdapterPair();
            pair.Embedding |= suffix.StartsWith(".lora_embedding", StringComparison.Ordinal);
            if (suffix is ".lora_A.weight" or ".lora_embedding_A")
                pair.A = tensor;
            else
                pair.B = tensor;
        }

        // A checkpoint saved with LoRA applied names base weights X.base_layer.weight and holds the adapters too.
        var baseByOutputKey = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
        var dropped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in checkpoint.Tensors)
        {
            if (AdapterMerge.SplitAdapterKey(tensor.Name) is var (path, _))
            {
                if (pairs.ContainsKey(path))
                    dropped.Add(tensor.Name);
                else
                    problems.Add($"the base checkpoint holds adapter tensor '{tensor.Name}' for a module the adapter file does not cover; " +
                        "merge that adapter into the checkpoint first, or save the checkpoint before ApplyLora");
                continue;
            }
            string outputKey = tensor.Name.Replace(".base_layer.", ".", StringComparison.Ordinal);
            if (!baseByOutputKey.TryAdd(outputKey, tensor))
                problems.Add($"the base checkpoint holds both '{baseByOutputKey[outputKey].Name}' and '{tensor.Name}'");
        }

        var computed = new Dictionary<string, Func<byte[]>>(StringComparer.Ordinal);
        foreach (var (path, pair) in pairs)
            PlanWeight(path, pair, config, checkpoint, adapter, baseByOutputKey, computed, problems);
        foreach (var (key, replacement) in replacements)
            PlanReplacement(key, replacement, adapter, baseByOutputKey, computed, problems);

        if (problems.Count > 0)
            throw new LoraFileException(
                $"Cannot merge adapter '{adapterName}' into '{checkpoint.Source}'; nothing was written. {problems.Count} problem(s): " +
                string.Join("; ", problems.Take(ProblemsShown)) + (problems.Count > ProblemsShown ? $"; and {problems.Count - ProblemsShown} more." : "."));

        var outputs = baseByOutputKey
            .Select(entry => new MergeOutput(entry.Key, entry.Value,
                computed.TryGetValue(entry.Key, out var compute) ? compute : () => checkpoint.ReadBytes(entry.Value)))
            .ToList();
        return new MergePlan(outputs, new AdapterMergeResult(pairs.Count, replacements.Count,
            outputs.Count - pairs.Count - replacements.Count, dropped.Count));
    }

    private static void PlanWeight(string path, AdapterPair pair, AdapterConfig config, SafetensorsReader checkpoint,
        SafetensorsReader adapter, Dictionary<string, SafetensorsTensorInfo> baseByOutputKey,
        Dictionary<string, Func<byte[]>> computed, List<string> problems)
    {
        if (pair.A is not { } a || pair.B is not { } b)
        {
            problems.Add($"'{path}' has only one of its two adapter matrices ({(pair.A ?? pair.B)!.Name})");
            return;
        }
        string weightKey = path + ".weight";
        if (!baseByOutputKey.TryGetValue(weightKey, out var weight))
        {
            problems.Add($"the base checkpoint has no '{weightKey}' (nor '{path}.base_layer.weight') for adapter '{path}'");
            return;
        }
        if (!weight.DType.IsFloatingPoint() || !a.DType.IsFloatingPoint() || !b.DType.IsFloatingPoint())
        {
            problems.Add($"'{path}': merging needs floating-point tensors, but the weight is {weight.DType}, A {a.DType}, B {b.DType}");
            return;
        }
        if (ExpectedWeightShape(a, b, pair.Embedding) is not { } expected || !expected.SequenceEqual(weight.Shape))
        {
            problems.Add($"'{path}': A {a.ShapeText} and B {b.ShapeText} do not fit the base weight {weight.ShapeText}");
            return;
        }
        int rank = (int)a.Shape[0];
        var wanted = config.ConfigFor(path);
        if (wanted.Rank != rank)
        {
            problems.Add($"'{path}': the tensors have rank {rank} but {AdapterConfig.FileName} says {wanted.Rank}");
            return;
        }
        double scaling = wanted.Scaling;
        computed[weightKey] = () => AdapterMerge.MergeWeight(checkpoint.ReadBytes(weight), weight.DType,
            adapter.ReadBytes(a), a.DType, adapter.ReadBytes(b), b.DType, rank, pair.Embedding, scaling, weightKey);
    }

    // Linear/conv: A [r, in, k…], B [out, r, 1…] → W [out, in, k…]. Embedding: A [r, num], B [dim, r] → W [num, dim].
    private static long[]? ExpectedWeightShape(SafetensorsTensorInfo a, SafetensorsTensorInfo b, bool embedding)
    {
        if (a.Shape.Count < 2 || b.Shape.Count < 2 || a.Shape[0] < 1 || a.Shape[0] > int.MaxValue || b.Shape[1] != a.Shape[0])
            return null;
        if (embedding)
            return a.Shape.Count == 2 && b.Shape.Count == 2 ? [a.Shape[1], b.Shape[0]] : null;
        if (b.Shape.Count != a.Shape.Count || b.Shape.Skip(2).Any(size => size != 1))
            return null;
        return [b.Shape[0], .. a.Shape.Skip(1)];
    }

    private static void PlanReplacement(string key, SafetensorsTensorInfo replacement, SafetensorsReader adapter,
        Dictionary<string, SafetensorsTensorInfo> baseByOutputKey, Dictionary<string, Func<byte[]>> computed, List<string> problems)
    {
        if (!baseByOutputKey.TryGetValue(key, out var target))
        {
            problems.Add($"the adapter's modules_to_save tensor '{replacement.Name}' has no '{key}' in the base checkpoint to replace");
            return;
        }
        if (!replacement.Shape.SequenceEqual(target.Shape))
        {
            problems.Add($"'{key}': {replacement.ShapeText} in the adapter, {target.ShapeText} in the base checkpoint");
            return;
        }
        if (replacement.DType == target.DType)
            computed[key] = () => adapter.ReadBytes(replacement);
        else if (replacement.DType.IsFloatingPoint() && target.DType.IsFloatingPoint())
            computed[key] = () => target.DType == SafetensorsDType.F64
                ? FloatCodec.FromDoubles(FloatCodec.ToDoubles(adapter.ReadBytes(replacement), replacement.DType))
                : FloatCodec.FromSingles(FloatCodec.ToSingles(adapter.ReadBytes(replacement), replacement.DType), target.DType);
        else
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"'{key}': {replacement.DType} in the adapter cannot replace {target.DType} in the base checkpoint"));
    }
}
