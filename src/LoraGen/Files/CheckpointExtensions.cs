using System.Text.Json.Nodes;
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
        TensorLoader.CheckAndCopy(targets, file, $"Checkpoint '{what}'", [], LoraGenAdvice);
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
        LoraTree.RefuseMerged(model, "load base weights into");
        var targets = BaseWeights(model);
        using var files = PretrainedFiles.Open(path, options.Map);
        var modelKeys = targets.Select(target => target.Key).ToHashSet(StringComparer.Ordinal);
        files.Remove(files.Tensors.Where(t => !modelKeys.Contains(t.Name) && PretrainedLoadOptions.Matches(options.AllowUnexpected, t.Name))
            .Select(t => t.Name));
        targets.RemoveAll(target => files.Find(target.Key) is null && PretrainedLoadOptions.Matches(options.AllowMissing, target.Key));
        TensorLoader.CheckAndCopy(targets, files, $"Checkpoint '{files.Source}'", [],
            "Map the file's keys to the model's paths with PretrainedLoadOptions (RemovePrefix, AddPrefix, Rename), and " +
            "list what may be left over or missing in AllowUnexpected / AllowMissing.");
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
