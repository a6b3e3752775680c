using System.Text.Json.Nodes;
using TorchSharp;
using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Whole-model weights: LoraGen checkpoints (a module's whole state dict, adapters included, in one safetensors
/// file) and Hugging Face checkpoints (the base model's weights by their Hugging Face names, in
/// <c>model.safetensors</c> or sharded with <c>model.safetensors.index.json</c>). See docs/file-formats.md.
/// </summary>
public static class CheckpointExtensions
{
    /// <summary>The largest shard <see cref="SavePretrained"/> writes unless told otherwise: 5 GB, as transformers.</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    private const string LoraGenAdvice = "A checkpoint holds the state dict of one model: load it into a model built the " +
        "same way (with LoRA applied if it was saved with LoRA applied).";

    /// <summary>Writes every parameter and buffer of the model (its state dict, with TorchSharp's names) to one
    /// safetensors file, atomically.</summary>
    public static void SaveCheckpoint(this nn.Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        var tensors = model.state_dict().Select(entry => TensorBytes.ToLazyEntry(entry.Key, entry.Value)).ToList();
        SafetensorsWriter.WriteFile(path, tensors, PyTorchMetadata());
    }

    /// <summary>Loads a checkpoint written by <see cref="SaveCheckpoint"/> (or any safetensors state dict with
    /// the same names), all or nothing: every key, shape and dtype is checked before anything is copied.
    /// Floating-point values are converted to the model's dtype; other types must match exactly.</summary>
    /// <exception cref="LoraFileException">The file is malformed or does not match the model; nothing was changed.</exception>
    public static void LoadCheckpoint(this nn.Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        using var file = SafetensorsReader.Open(path);
        LoadCheckpoint(model, file, path);
    }

    internal static void LoadCheckpoint(nn.Module model, SafetensorsReader file, string what)
    {
        var targets = model.state_dict().Select(entry => (entry.Key, entry.Value)).ToList();
        var meta = MetaTensors.Of(model, targets.Select(t => t.Value));
        TensorLoader.CheckAndCopy(targets, file, $"Checkpoint '{what}'", meta.LeftEmpty([]), LoraGenAdvice, meta);
        foreach (var (_, layer) in LoraTree.Layers(model))
            layer.BaseWeightChanged();
    }

    /// <summary>
    /// Loads a Hugging Face checkpoint's weights into the model by parameter name, as <c>from_pretrained</c> does:
    /// <paramref name="path"/> is a <c>.safetensors</c> file, a <c>model.safetensors.index.json</c> with its
    /// shards, or a directory holding either. Keys are mapped with <paramref name="options"/>. In a model with
    /// adapters, <c>X.weight</c> lands on <c>X.base_layer.weight</c> and the adapters keep their values.
    /// <para>
    /// All or nothing: every missing, unexpected and mismatched key is listed in one error before anything is
    /// copied, and every tensor is read once before the first is copied. Floating-point tensors are converted to
    /// the model's dtype; other dtypes must match. Tensors are read one at a time, so the memory needed beyond the
    /// model is about the largest tensor, not the file.
    /// </para>
    /// </summary>
    /// <exception cref="LoraFileException">A file is malformed, or the checkpoint does not fit the model; nothing was changed.</exception>
    /// <exception cref="FileNotFoundException">There is no checkpoint at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidOperationException">An adapter is merged into its base weight (call Unmerge() first).</exception>
    public static void LoadPretrained(this nn.Module model, string path, PretrainedLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        options ??= PretrainedLoadOptions.Default;
        if (!Enum.IsDefined(options.Quantize))
            throw new ArgumentOutOfRangeException(nameof(options), options.Quantize, "PretrainedLoadOptions.Quantize is not a QuantizationKind.");
        LoraTree.RefuseMerged(model, "load base weights into");
        if (options.Quantize != QuantizationKind.None)
        {
            LoadQuantized(model, path, options, options.Quantize);
            return;
        }
        RefuseQuantized(model, "load base weights into",
            "load with PretrainedLoadOptions { Quantize = ... }, which rebuilds the quantized layers from the file's float weights");
        var targets = BaseWeights(model);
        using var files = PretrainedFiles.Open(path, options.Map);
        var modelKeys = targets.Select(target => target.Key).ToHashSet(StringComparer.Ordinal);
        files.Remove(files.Tensors.Where(t => !modelKeys.Contains(t.Name) && PretrainedLoadOptions.Matches(options.AllowUnexpected, t.Name))
            .Select(t => t.Name));
        targets.RemoveAll(target => files.Find(target.Key) is null && PretrainedLoadOptions.Matches(options.AllowMissing, target.Key));
        var meta = MetaTensors.Of(model, targets.Select(t => t.Value));
        TensorLoader.CheckAndCopy(targets, files, $"Checkpoint '{files.Source}'", meta.LeftEmpty([]),
            "Map the file's keys to the model's paths with PretrainedLoadOptions (RemovePrefix, AddPrefix, Rename), and " +
            "list what may be left over or missing in AllowUnexpected / AllowMissing.", meta);
        foreach (var (_, layer) in LoraTree.Layers(model))
            layer.BaseWeightChanged();
    }

    /// <summary>
    /// Writes the model's base weights in Hugging Face's layout to <paramref name="directory"/>: paths as
    /// <see cref="LoadPretrained"/> reads them (<c>X.base_layer.weight</c> saved as <c>X.weight</c>, adapters left
    /// out), in <c>model.safetensors</c>, or above <paramref name="maxShardBytes"/> in
    /// <c>model-0000i-of-0000n.safetensors</c> shards with a <c>model.safetensors.index.json</c>. Every file is
    /// written atomically, the index last; the previous save's other files are removed afterwards.
    /// </summary>
    /// <exception cref="InvalidOperationException">An adapter is merged (unmerge it, or MergeAndUnload to save the merged model).</exception>
    public static void SavePretrained(this nn.Module model, string directory, long maxShardBytes = DefaultMaxShardBytes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        LoraTree.RefuseMerged(model, "save the base weights of");
        RefuseQuantized(model, "save the base weights of",
            "a Hugging Face checkpoint holds float weights. MergeAndUnload() gives float Linears for the adapted layers; save the " +
            "adapter with SaveAdapter (it holds no quantized tensor), or the whole state with SaveCheckpoint");
        var tensors = BaseWeights(model).Select(target => TensorBytes.ToLazyEntry(target.Key, target.Value)).ToList();
        var shards = Shard(tensors, maxShardBytes);
        Directory.CreateDirectory(directory);
        string saveId = Guid.NewGuid().ToString("N");
        var names = shards.Count == 1
            ? [PretrainedFiles.SingleFileName]
            : shards.Select((_, i) => $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors").ToList();
        var targets = shards.Count == 1 ? names : [.. names, PretrainedFiles.IndexFileName];
        using (var save = AtomicSave.Begin(directory, [.. targets]))
        {
            var metadata = shards.Count == 1 ? PyTorchMetadata() : PyTorchMetadata((PretrainedFiles.SaveIdKey, saveId));
            for (int i = 0; i < shards.Count; i++)
                save.Prepare(names[i], stream => SafetensorsWriter.Write(stream, shards[i], metadata));
            if (shards.Count > 1)
                save.Prepare(PretrainedFiles.IndexFileName, stream => stream.Write(IndexJson(shards, names, saveId)));
            save.Commit();
        }
        RemoveOtherSaves(directory, targets);
    }

    // Quantized layers hold codes and scales as buffers: in a Hugging Face checkpoint they would be tensors no loader
    // knows (and LoadPretrained would look for float weights at those paths).
    private static void RefuseQuantized(nn.Module model, string action, string remedy)
    {
        var quantized = model.named_modules().Where(entry => entry.module is QuantizedLinear or QuantizedEmbedding)
            .Select(entry => $"{entry.name} ({entry.module.GetType().Name})").ToList();
        if (quantized.Count > 0)
            throw new InvalidOperationException(
                $"Cannot {action} this model: {string.Join(", ", quantized.Take(5))}{(quantized.Count > 5 ? $" and {quantized.Count - 5} more" : "")} " +
                $"{(quantized.Count == 1 ? "is" : "are")} quantized (QLoRA), and codes are not float weights; {remedy}.");
    }

    // LoadPretrained with Quantize: every Linear (or QuantizedLinear) not kept in float is rebuilt from the file's
    // weight as a QuantizedLinear, one at a time, the float layer disposed right after; the rest is loaded as usual.
    // Everything is checked first (keys, shapes, whether each slot can take a QuantizedLinear); the other tensors are
    // then copied (all or nothing, as without Quantize), then the Linears are quantized one by one.
    private static void LoadQuantized(nn.Module model, string path, PretrainedLoadOptions options, QuantizationKind kind)
    {
        if (model.modules().OfType<QuantizedEmbedding>().Any())
            throw new InvalidOperationException(
                "LoadPretrained with Quantize loads into float or QuantizedLinear layers, but this model holds a QuantizedEmbedding " +
                "(LoraOptions.QuantizeFrozenEmbeddings): load the checkpoint first, then ApplyLora with QuantizeFrozenEmbeddings.");
        var adapted = LoraTree.Layers(model).Select(entry => entry.Path).ToList();
        if (adapted.Count > 0)
            throw new InvalidOperationException(
                $"LoadPretrained with Quantize loads a model without adapters, but {string.Join(", ", adapted.Take(5))} hold LoRA adapters: " +
                "load the base first, then ApplyLora / LoadAdapter (a QuantizedLinear is wrapped as it is).");
        var candidates = LoraTree.Edges(model)
            .Where(edge => edge.Module is TorchSharp.Modules.Linear or QuantizedLinear && !KeptInFloat(options.KeepInFloat, edge.Path))
            .ToList();
        using var files = PretrainedFiles.Open(path, options.Map);
        var problems = new List<string>();
        var planned = new List<(LoraTree.Edge Edge, ModuleSlot Slot, SafetensorsTensorInfo? Weight, SafetensorsTensorInfo? Bias)>();
        var hidden = new HashSet<string>(StringComparer.Ordinal);
        var emptyWithoutWeight = new List<(TorchSharp.Modules.Linear Linear, string Key)>();
        foreach (var edge in candidates)
        {
            var (outFeatures, inFeatures, hasBias) = edge.Module switch
            {
                TorchSharp.Modules.Linear linear => (linear.out_features, linear.in_features, linear.bias is not null),
                _ => (((QuantizedLinear)edge.Module).OutFeatures, ((QuantizedLinear)edge.Module).InFeatures, ((QuantizedLinear)edge.Module).Bias is not null),
            };
            string weightKey = edge.Path + ".weight", biasKey = edge.Path + ".bias";
            var weight = files.Find(weightKey);
            var bias = files.Find(biasKey);
            hidden.Add(weightKey);
            hidden.Add(biasKey);
            bool empty = edge.Module is TorchSharp.Modules.Linear { weight.is_meta: true };
            if (weight is null)
            {
                if (!PretrainedLoadOptions.Matches(options.AllowMissing, weightKey))
                    problems.Add($"{weightKey}: not in the file (it is a Linear the load would quantize)");
                else if (empty)
                    emptyWithoutWeight.Add(((TorchSharp.Modules.Linear)edge.Module, weightKey));   // decided below
            }
            else if (!weight.Shape.SequenceEqual([outFeatures, inFeatures]))
                problems.Add($"{weightKey}: {weight.DType} {weight.ShapeText} in the file, [{outFeatures}, {inFeatures}] in the model");
            else if (!weight.DType.IsFloatingPoint())
                problems.Add($"{weightKey}: {weight.DType} in the file is not a float weight to quantize");
            if (hasBias && bias is null && weight is not null && (empty || !PretrainedLoadOptions.Matches(options.AllowMissing, biasKey)))
                problems.Add($"{biasKey}: not in the file");
            else if (!hasBias && bias is not null && !PretrainedLoadOptions.Matches(options.AllowUnexpected, biasKey))
                problems.Add($"{biasKey}: in the file, but the model's layer has no bias");
            else if (bias is not null && !bias.Shape.SequenceEqual([outFeatures]))
                problems.Add($"{biasKey}: {bias.DType} {bias.ShapeText} in the file, [{outFeatures}] in the model");
            try
            {
                planned.Add((edge, ModuleSlot.Of(edge.Parent, edge.Name, edge.Module, edge.Path), weight, hasBias ? bias : null));
            }
            catch (LoraConfigurationException error)
            {
                problems.Add($"{edge.Path}: cannot hold a QuantizedLinear ({error.Message}); keep it in float with PretrainedLoadOptions.KeepInFloat");
            }
        }
        var prefixes = candidates.Select(edge => edge.Path + ".").ToList();
        var targets = BaseWeights(model).Where(target => !prefixes.Any(prefix => target.Key.StartsWith(prefix, StringComparison.Ordinal))).ToList();
        var modelKeys = targets.Select(target => target.Key).ToHashSet(StringComparer.Ordinal);
        files.Remove(files.Tensors.Where(t => !hidden.Contains(t.Name) && !modelKeys.Contains(t.Name) && PretrainedLoadOptions.Matches(options.AllowUnexpected, t.Name))
            .Select(t => t.Name));
        targets.RemoveAll(target => files.Find(target.Key) is null && PretrainedLoadOptions.Matches(options.AllowMissing, target.Key));
        var meta = MetaTensors.Of(model, targets.Select(t => t.Value));
        problems.AddRange(meta.LeftEmpty([.. candidates.Select(edge => edge.Path)]));
        // A Linear built without weights and missing from the file can still be quantized from its own weight if that is
        // tied to a tensor the load fills (an LM head sharing the embedding); otherwise there is nothing to quantize.
        problems.AddRange(emptyWithoutWeight.Where(entry => !meta.Fills(entry.Linear.weight!)).Select(entry =>
            $"{entry.Key}: not in the file, and the model was built without weights (EmptyWeights): nothing to quantize it from; " +
            "put it in the checkpoint, or tie it to a weight the file holds"));
        TensorLoader.CheckAndCopy(targets, new HiddenKeys(files, hidden), $"Checkpoint '{files.Source}'", problems,
            "Map the file's keys to the model's paths with PretrainedLoadOptions (RemovePrefix, AddPrefix, Rename), list what may " +
            "be left over or missing in AllowUnexpected / AllowMissing, and Linears to keep in float in KeepInFloat.", meta);

        using var staging = new StagingBuffers();
        foreach (var (edge, slot, weightInfo, biasInfo) in planned)
        {
            QuantizedLinear quantized;
            if (weightInfo is null)
            {
                // Allowed missing: a Linear is quantized from its own weight; a QuantizedLinear stays as it is.
                if (edge.Module is not TorchSharp.Modules.Linear own)
                    continue;
                quantized = QuantizedLinear.FromLinear(own, kind);
            }
            else
            {
                using var weight = staging.Read(files, weightInfo);
                using var bias = biasInfo is null ? null : TensorBytes.Read(files, biasInfo);
                using var ownBias = bias is null && edge.Module is TorchSharp.Modules.Linear { bias: { } kept } ? kept.detach() : null;
                quantized = QuantizedLinear.FromWeight(weight, bias ?? ownBias, kind);
            }
            var device = edge.Module is TorchSharp.Modules.Linear linear ? linear.weight!.device : ((QuantizedLinear)edge.Module).Device;
            if (device.type is not (DeviceType.CPU or DeviceType.META))
                quantized.to(device);
            slot.Put(quantized);
            edge.Module.Dispose();
        }
    }

    private static bool KeptInFloat(IReadOnlyList<string> keep, string path) =>
        keep.Any(item => path.EndsWith("." + item, StringComparison.Ordinal)) || PretrainedLoadOptions.Matches(keep, path);

    /// <summary>A checkpoint with some keys left out (those LoadPretrained quantizes itself).</summary>
    private sealed class HiddenKeys(PretrainedFiles files, HashSet<string> hidden) : ITensorSource
    {
        public IEnumerable<SafetensorsTensorInfo> Tensors => files.Tensors.Where(t => !hidden.Contains(t.Name));

        public SafetensorsTensorInfo? Find(string name) => hidden.Contains(name) ? null : files.Find(name);

        public void ReadInto(SafetensorsTensorInfo tensor, Span<byte> destination) => files.ReadInto(tensor, destination);
    }

    // The model's state dict as a Hugging Face base model names it: adapter parameters left out, and a wrapped
    // layer's base_layer level removed (what PEFT does when a base is loaded under a PEFT model).
    private static List<(string Key, Tensor Value)> BaseWeights(nn.Module model)
    {
        var layers = LoraTree.Layers(model).ToList();
        var adapterKeys = layers.SelectMany(entry => entry.Layer.AdapterNames
                .SelectMany(adapter => entry.Layer.NamedParametersOf(adapter).Select(p => LoraTree.Join(entry.Path, p.Name))))
            .ToHashSet(StringComparer.Ordinal);
        var basePrefixes = layers.Select(entry => (Wrapped: LoraTree.Join(entry.Path, PeftLayout.BaseLayer) + ".", Plain: entry.Path.Length == 0 ? "" : entry.Path + "."))
            .ToList();
        var weights = new List<(string, Tensor)>();
        foreach (var (key, value) in model.state_dict())
        {
            if (adapterKeys.Contains(key))
                continue;
            var prefix = basePrefixes.FirstOrDefault(p => key.StartsWith(p.Wrapped, StringComparison.Ordinal));
            weights.Add((prefix.Wrapped is null ? key : prefix.Plain + key[prefix.Wrapped.Length..], value));
        }
        return weights;
    }

    private static List<List<SafetensorsTensor>> Shard(List<SafetensorsTensor> tensors, long maxShardBytes)
    {
        var shards = new List<List<SafetensorsTensor>> { new() };
        long size = 0;
        foreach (var tensor in tensors)
        {
            if (size > 0 && size + tensor.ByteLength > maxShardBytes)
            {
                shards.Add([]);
                size = 0;
            }
            shards[^1].Add(tensor);
            size += tensor.ByteLength;
        }
        return shards;
    }

    private static byte[] IndexJson(List<List<SafetensorsTensor>> shards, List<string> names, string saveId)
    {
        var weightMap = new JsonObject();
        foreach (var (tensor, shard) in shards.SelectMany((tensors, i) => tensors.Select(t => (t, names[i]))).OrderBy(e => e.t.Name, StringComparer.Ordinal))
            weightMap[tensor.Name] = shard;
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = shards.Sum(s => s.Sum(t => t.ByteLength)), [PretrainedFiles.SaveIdKey] = saveId },
            ["weight_map"] = weightMap,
        };
        return System.Text.Encoding.UTF8.GetBytes(index.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    // A sharded save after a single-file one (or the reverse, or fewer shards than before) would leave files a
    // loader could take for the checkpoint.
    private static void RemoveOtherSaves(string directory, List<string> keep)
    {
        var candidates = Directory.EnumerateFiles(directory, "model-*-of-*.safetensors")
            .Append(Path.Combine(directory, PretrainedFiles.SingleFileName))
            .Append(Path.Combine(directory, PretrainedFiles.IndexFileName));
        foreach (string path in candidates)
            if (!keep.Contains(Path.GetFileName(path)) && File.Exists(path))
                File.Delete(path);
    }

    private static Dictionary<string, string> PyTorchMetadata(params (string Key, string Value)[] extra)
    {
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        foreach (var (key, value) in extra)
            metadata[key] = value;
        return metadata;
    }
}
