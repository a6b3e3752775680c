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

    public static MergePlan Create(SafetensorsReader checkpoint, SafetensorsReader adapter, AdapterConfig config,
        AdapterFileOptions options, string adapterName)
    {
        string refusal = $"Cannot merge adapter '{adapterName}' into '{checkpoint.Source}'; nothing was written.";
        // The adapter on its own first, with the checks LoadAdapter and loragen inspect make.
        var contents = AdapterConsistency.Examine(config, adapter, options.KeyPrefix);
        if (contents.Problems.Count > 0)
            throw new LoraFileException($"{refusal} {AdapterConsistency.Describe("The adapter", contents.Problems)}");

        var problems = new List<string>();
        var adapted = contents.Layers.Select(layer => layer.Path).ToHashSet(StringComparer.Ordinal);
        // A checkpoint saved with LoRA applied names base weights X.base_layer.weight and holds the adapters too.
        var baseByOutputKey = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
        var dropped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in checkpoint.Tensors)
        {
            if (PeftLayout.SplitAdapterKey(tensor.Name) is var (path, _))
            {
                if (adapted.Contains(path))
                    dropped.Add(tensor.Name);
                else
                    problems.Add($"the base checkpoint holds adapter tensor '{tensor.Name}' for a module the adapter file does not cover; " +
                        "merge that adapter into the checkpoint first, or save the checkpoint before ApplyLora");
                continue;
            }
            string outputKey = PeftLayout.WithoutBaseLayer(tensor.Name);
            if (!baseByOutputKey.TryAdd(outputKey, tensor))
                problems.Add($"the base checkpoint holds both '{baseByOutputKey[outputKey].Name}' and '{tensor.Name}'");
        }

        var computed = new Dictionary<string, Func<byte[]>>(StringComparer.Ordinal);
        foreach (var layer in contents.Layers)
            PlanWeight(layer, checkpoint, adapter, baseByOutputKey, computed, problems);
        foreach (var (key, replacement) in contents.SavedTensors)
            PlanReplacement(key, replacement, adapter, baseByOutputKey, computed, problems);

        if (problems.Count > 0)
            throw new LoraFileException(
                $"{refusal} {problems.Count} problem(s): " +
                string.Join("; ", problems.Take(ProblemsShown)) + (problems.Count > ProblemsShown ? $"; and {problems.Count - ProblemsShown} more." : "."));

        var outputs = baseByOutputKey
            .Select(entry => new MergeOutput(entry.Key, entry.Value,
                computed.TryGetValue(entry.Key, out var compute) ? compute : () => checkpoint.ReadBytes(entry.Value)))
            .ToList();
        int merged = contents.Layers.Count, replaced = contents.SavedTensors.Count;
        return new MergePlan(outputs, new AdapterMergeResult(merged, replaced, outputs.Count - merged - replaced, dropped.Count));
    }

    // The adapter's pair is consistent (AdapterConsistency); what is left is whether the base weight fits it.
    private static void PlanWeight(AdapterLayerTensors layer, SafetensorsReader checkpoint, SafetensorsReader adapter,
        Dictionary<string, SafetensorsTensorInfo> baseByOutputKey, Dictionary<string, Func<byte[]>> computed, List<string> problems)
    {
        string path = layer.Path, weightKey = path + ".weight";
        if (!baseByOutputKey.TryGetValue(weightKey, out var weight))
        {
            problems.Add($"the base checkpoint has no '{weightKey}' (nor '{path}.{PeftLayout.BaseLayer}.weight') for adapter '{path}'");
            return;
        }
        if (!weight.DType.IsFloatingPoint())
        {
            problems.Add($"'{path}': merging needs a floating-point weight, but '{weight.Name}' is {weight.DType}");
            return;
        }
        if (!layer.WeightShape.SequenceEqual(weight.Shape))
        {
            problems.Add($"'{path}': A {layer.A.ShapeText} and B {layer.B.ShapeText} do not fit the base weight {weight.ShapeText}");
            return;
        }
        var (a, b) = (layer.A, layer.B);
        int rank = layer.Rank;
        bool transposed = layer.Kind == LoraLayerKind.Embedding;
        double scaling = layer.Config.Scaling;
        computed[weightKey] = () => AdapterMerge.MergeWeight(checkpoint.ReadBytes(weight), weight.DType,
            adapter.ReadBytes(a), a.DType, adapter.ReadBytes(b), b.DType, rank, transposed, scaling, weightKey);
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
