using System.Globalization;
using LoraGen.Files;

namespace LoraGen;

/// <summary>One tensor of a merged checkpoint: its key, the base entry it comes from, and how to compute its bytes.</summary>
internal sealed record MergeOutput(string Key, SafetensorsTensorInfo Base, Func<byte[]> Compute);

/// <summary>One adapter of a merge: how messages name it (its directory), its files, and its weight.</summary>
internal sealed record MergeSource(string Name, AdapterConfig Config, SafetensorsReader Weights, double Weight);

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
        AdapterFileOptions options, string adapterName) =>
        Create(checkpoint, [new MergeSource(adapterName, config, adapter, 1.0)], options);

    public static MergePlan Create(SafetensorsReader checkpoint, IReadOnlyList<MergeSource> sources, AdapterFileOptions options)
    {
        bool several = sources.Count > 1;
        string refusal = several
            ? $"Cannot merge adapters {string.Join(", ", sources.Select(s => $"'{s.Name}'"))} into '{checkpoint.Source}'; nothing was written."
            : $"Cannot merge adapter '{sources[0].Name}' into '{checkpoint.Source}'; nothing was written.";
        // Each adapter on its own first, with the checks LoadAdapter and loragen inspect make.
        var contents = sources.Select(source => AdapterConsistency.Examine(source.Config, source.Weights, options.KeyPrefix)).ToList();
        var inconsistent = sources.Zip(contents).Where(pair => pair.Second.Problems.Count > 0).ToList();
        if (inconsistent.Count > 0)
            throw new LoraFileException($"{refusal} " + string.Join(" ", inconsistent.Select(pair =>
                AdapterConsistency.Describe(several ? $"Adapter '{pair.First.Name}'" : "The adapter", pair.Second.Problems))));

        var problems = new List<string>();
        // Every adapter's layers by module path, in the order the adapters were given.
        var byPath = new SortedDictionary<string, List<(MergeSource Source, AdapterLayerTensors Layer)>>(StringComparer.Ordinal);
        foreach (var (source, content) in sources.Zip(contents))
            foreach (var layer in content.Layers)
                (byPath.TryGetValue(layer.Path, out var list) ? list : byPath[layer.Path] = []).Add((source, layer));
        // A checkpoint saved with LoRA applied names base weights X.base_layer.weight and holds the adapters too.
        var baseByOutputKey = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
        var dropped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in checkpoint.Tensors)
        {
            if (PeftLayout.SplitAdapterKey(tensor.Name) is var (path, _))
            {
                if (byPath.ContainsKey(path))
                    dropped.Add(tensor.Name);
                else
                    problems.Add($"the base checkpoint holds adapter tensor '{tensor.Name}' for a module the adapter file{(several ? "s do" : " does")} not cover; " +
                        "merge that adapter into the checkpoint first, or save the checkpoint before ApplyLora");
                continue;
            }
            string outputKey = PeftLayout.WithoutBaseLayer(tensor.Name);
            if (!baseByOutputKey.TryAdd(outputKey, tensor))
                problems.Add($"the base checkpoint holds both '{baseByOutputKey[outputKey].Name}' and '{tensor.Name}'");
        }

        var computed = new Dictionary<string, Func<byte[]>>(StringComparer.Ordinal);
        var updatedBy = new Dictionary<string, MergeSource>(StringComparer.Ordinal);
        foreach (var (path, layers) in byPath)
        {
            if (Disagreement(path, layers) is { } disagreement)
            {
                problems.Add(disagreement);
                continue;
            }
            PlanWeight(path, layers, checkpoint, baseByOutputKey, computed, problems, several);
            updatedBy[path + ".weight"] = layers[0].Source;
        }
        var replacedBy = new Dictionary<string, MergeSource>(StringComparer.Ordinal);
        foreach (var (source, content) in sources.Zip(contents))
            foreach (var (key, replacement) in content.SavedTensors)
            {
                if (replacedBy.TryGetValue(key, out var owner) && !ReferenceEquals(owner, source))
                {
                    problems.Add($"'{key}' is in the modules_to_save of both adapter '{owner.Name}' and adapter '{source.Name}': " +
                        "a module_to_save belongs to one adapter, and a merge cannot say whose copy to keep; merge only one of them " +
                        "with the others (or merge one, then the other into that output, if replacing it is what you mean)");
                    continue;
                }
                if (updatedBy.TryGetValue(key, out var updater) && !ReferenceEquals(updater, source))
                {
                    problems.Add($"'{key}' is in the modules_to_save of adapter '{source.Name}', which replaces it, " +
                        $"and adapter '{updater.Name}' adds a LoRA update to it; merge them separately");
                    continue;
                }
                replacedBy[key] = source;
                PlanReplacement(key, replacement, source.Weights, baseByOutputKey, computed, problems);
            }

        if (problems.Count > 0)
            throw new LoraFileException(
                $"{refusal} {problems.Count} problem(s): " +
                string.Join("; ", problems.Take(ProblemsShown)) + (problems.Count > ProblemsShown ? $"; and {problems.Count - ProblemsShown} more." : "."));

        var outputs = baseByOutputKey
            .Select(entry => new MergeOutput(entry.Key, entry.Value,
                computed.TryGetValue(entry.Key, out var compute) ? compute : () => checkpoint.ReadBytes(entry.Value)))
            .ToList();
        int merged = byPath.Count, replaced = replacedBy.Count;
        return new MergePlan(outputs, new AdapterMergeResult(merged, replaced, outputs.Count - merged - replaced, dropped.Count));
    }

    // Adapters that adapt the same module must update the same weight the same way (kind and weight shape).
    private static string? Disagreement(string path, List<(MergeSource Source, AdapterLayerTensors Layer)> layers)
    {
        var (first, firstLayer) = layers[0];
        foreach (var (source, layer) in layers.Skip(1))
            if (layer.Kind != firstLayer.Kind || !layer.WeightShape.SequenceEqual(firstLayer.WeightShape))
                return $"'{path}': adapter '{first.Name}' has {Describe(firstLayer)}, adapter '{source.Name}' {Describe(layer)}; " +
                    "adapters merged together must adapt a module to the same weight (adapters of one base model)";
        return null;
    }

    private static string Describe(AdapterLayerTensors layer) =>
        $"a {layer.Kind} adapter A {layer.A.ShapeText} and B {layer.B.ShapeText} (a [{string.Join(", ", layer.WeightShape)}] weight)";

    // The adapters' pairs are consistent (AdapterConsistency) and agree on the weight's shape; what is left is
    // whether the base weight fits them.
    private static void PlanWeight(string path, List<(MergeSource Source, AdapterLayerTensors Layer)> layers, SafetensorsReader checkpoint,
        Dictionary<string, SafetensorsTensorInfo> baseByOutputKey, Dictionary<string, Func<byte[]>> computed, List<string> problems, bool several)
    {
        string weightKey = path + ".weight";
        var first = layers[0].Layer;
        if (!baseByOutputKey.TryGetValue(weightKey, out var weight))
        {
            problems.Add($"the base checkpoint has no '{weightKey}' (nor '{path}.{PeftLayout.BaseLayer}.weight') for adapter{(several ? (layers.Count > 1 ? "s " : " ") + string.Join(", ", layers.Select(l => $"'{l.Source.Name}'")) + " at" : "")} '{path}'");
            return;
        }
        if (!weight.DType.IsFloatingPoint())
        {
            problems.Add($"'{path}': merging needs a floating-point weight, but '{weight.Name}' is {weight.DType}");
            return;
        }
        if (!first.WeightShape.SequenceEqual(weight.Shape))
        {
            problems.Add($"'{path}': A {first.A.ShapeText} and B {first.B.ShapeText}" +
                (several ? $" (adapter{(layers.Count > 1 ? "s" : "")} {string.Join(", ", layers.Select(l => $"'{l.Source.Name}'"))})" : "") +
                $" do not fit the base weight {weight.ShapeText}");
            return;
        }
        bool transposed = first.Kind == LoraLayerKind.Embedding;
        computed[weightKey] = () => AdapterMerge.MergeWeight(checkpoint.ReadBytes(weight), weight.DType,
            layers.Select(entry => new AdapterMerge.WeightUpdate(
                entry.Source.Weights.ReadBytes(entry.Layer.A), entry.Layer.A.DType,
                entry.Source.Weights.ReadBytes(entry.Layer.B), entry.Layer.B.DType,
                entry.Layer.Rank, entry.Source.Weight * entry.Layer.Config.Scaling)).ToList(),
            transposed, weightKey);
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
