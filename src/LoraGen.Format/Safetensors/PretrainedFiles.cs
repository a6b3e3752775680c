using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraGen.Files;

/// <summary>
/// The files of a Hugging Face checkpoint, opened and checked: one <c>model.safetensors</c>, or a
/// <c>model.safetensors.index.json</c> whose <c>weight_map</c> names the shard of every tensor. Only headers are
/// read here; the data is read tensor by tensor by the caller. Tensors are known by their keys after the caller's
/// key map (the model's names), and remember the key they have in the file.
/// </summary>
internal sealed class PretrainedFiles : IDisposable, ITensorSource
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>The metadata key, in the index and in every shard LoraGen writes, that ties the shards of one save
    /// together: a crash between the renames of a sharded save cannot pass off shards of two saves as one.</summary>
    public const string SaveIdKey = "loragen.save_id";

    private readonly List<SafetensorsReader> shards;
    private readonly Dictionary<string, (SafetensorsReader Shard, SafetensorsTensorInfo Info)> byKey;

    private PretrainedFiles(string source, List<SafetensorsReader> shards,
        Dictionary<string, (SafetensorsReader Shard, SafetensorsTensorInfo Info)> byKey)
    {
        Source = source;
        this.shards = shards;
        this.byKey = byKey;
    }

    /// <summary>The file or index the checkpoint was opened from, for messages.</summary>
    public string Source { get; }

    /// <summary>Every tensor, named by its mapped key.</summary>
    public IEnumerable<SafetensorsTensorInfo> Tensors => byKey.Select(entry => entry.Value.Info with { Name = entry.Key });

    /// <summary>The header entry of a mapped key, or null.</summary>
    public SafetensorsTensorInfo? Find(string name) => byKey.TryGetValue(name, out var entry) ? entry.Info with { Name = name } : null;

    /// <summary>Reads one tensor's raw bytes into <paramref name="destination"/>.</summary>
    public void ReadInto(SafetensorsTensorInfo tensor, Span<byte> destination)
    {
        var (shard, info) = byKey[tensor.Name];
        shard.ReadInto(info, destination);
    }

    /// <summary>Leaves out tensors the caller allows the file to have and the model does not use.</summary>
    public void Remove(IEnumerable<string> mappedKeys)
    {
        foreach (string key in mappedKeys.ToList())
            byKey.Remove(key);
    }

    // Gives every tensor its mapped key; two file keys that map to one is an error.
    private static Dictionary<string, (SafetensorsReader Shard, SafetensorsTensorInfo Info)> MapKeys(
        IEnumerable<(SafetensorsReader Shard, SafetensorsTensorInfo Info)> tensors, Func<string, string> map, string source)
    {
        var byKey = new Dictionary<string, (SafetensorsReader, SafetensorsTensorInfo)>(StringComparer.Ordinal);
        foreach (var (shard, info) in tensors)
        {
            string key = map(info.Name);
            if (byKey.TryGetValue(key, out var first))
                throw new LoraFileException($"Checkpoint '{source}': the key map gives '{first.Item2.Name}' and '{info.Name}' " +
                    $"the same name '{key}'. Change the key map so each tensor has its own name.");
            byKey[key] = (shard, info);
        }
        return byKey;
    }

    /// <summary>
    /// Opens <paramref name="path"/>: a <c>.safetensors</c> file, an index file, or a directory holding
    /// <see cref="SingleFileName"/> or <see cref="IndexFileName"/>; <paramref name="map"/> names each tensor.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing to load at the path.</exception>
    /// <exception cref="LoraFileException">A file is malformed, the index and its shards disagree, or the key map
    /// gives two tensors one name.</exception>
    public static PretrainedFiles Open(string path, Func<string, string> map)
    {
        string file = Resolve(path);
        if (file.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return OpenSharded(file, map);
        var reader = SafetensorsReader.Open(file);
        try
        {
            return new PretrainedFiles(file, [reader], MapKeys(reader.Tensors.Select(t => (reader, t)), map, file));
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    private static string Resolve(string path)
    {
        if (File.Exists(path))
            return path;
        if (!Directory.Exists(path))
            throw new FileNotFoundException($"No checkpoint at '{path}': give a .safetensors file, a {IndexFileName}, " +
                $"or a directory holding one of {SingleFileName} or {IndexFileName}.", path);
        string single = Path.Combine(path, SingleFileName), index = Path.Combine(path, IndexFileName);
        if (File.Exists(single) && File.Exists(index))
            throw new LoraFileException($"Directory '{path}' holds both {SingleFileName} and {IndexFileName}; " +
                "it is not clear which is the checkpoint. Give the file's path instead.");
        if (File.Exists(single))
            return single;
        if (File.Exists(index))
            return index;
        throw new FileNotFoundException($"Directory '{path}' holds neither {SingleFileName} nor {IndexFileName}.", path);
    }

    private static PretrainedFiles OpenSharded(string indexPath, Func<string, string> map)
    {
        var (weightMap, saveId) = ReadIndex(indexPath);
        string directory = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var shards = new Dictionary<string, SafetensorsReader>(StringComparer.Ordinal);
        try
        {
            foreach (string shardName in weightMap.Values.Distinct(StringComparer.Ordinal))
            {
                if (shardName.Contains('/') || shardName.Contains('\\') || shardName is "." or "..")
                    throw new LoraFileException($"Index '{indexPath}' names shard '{shardName}'; shards must be files next to the index.");
                string shardPath = Path.Combine(directory, shardName);
                if (!File.Exists(shardPath))
                    throw new LoraFileException($"Index '{indexPath}' names shard '{shardName}', which is not in '{directory}'.");
                shards[shardName] = SafetensorsReader.Open(shardPath);
            }
            var problems = new List<string>();
            var located = new List<(SafetensorsReader, SafetensorsTensorInfo)>();
            foreach (var (key, shardName) in weightMap)
            {
                if (shards[shardName].Find(key) is { } info)
                    located.Add((shards[shardName], info));
                else
                    problems.Add($"'{key}' is mapped to {shardName}, which does not hold it");
            }
            foreach (var (shardName, shard) in shards)
                if (saveId is not null && shard.Metadata.GetValueOrDefault(SaveIdKey) != saveId)
                    problems.Add($"{shardName} is from another save than the index (a sharded save was interrupted)");
            foreach (var (shardName, shard) in shards)
                foreach (var tensor in shard.Tensors.Where(t => !weightMap.ContainsKey(t.Name)))
                    problems.Add($"{shardName} holds '{tensor.Name}', which the index does not list");
            if (problems.Count > 0)
                throw new LoraFileException($"Index '{indexPath}' and its shards disagree: " + string.Join("; ", problems.Take(12)) +
                    (problems.Count > 12 ? $"; and {problems.Count - 12} more" : "") + ". Save the checkpoint again.");
            var byKey = MapKeys(located, map, indexPath);
            return new PretrainedFiles(indexPath, [.. shards.Values], byKey);
        }
        catch
        {
            foreach (var shard in shards.Values)
                shard.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, string> WeightMap, string? SaveId) ReadIndex(string indexPath)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException error)
        {
            throw new LoraFileException($"Index '{indexPath}' is not valid JSON: {error.Message}", error);
        }
        if (root?["weight_map"] is not JsonObject map)
            throw new LoraFileException($"Index '{indexPath}' has no \"weight_map\" object (key → shard file).");
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in map)
        {
            if (value is not JsonValue shard || !shard.TryGetValue<string>(out var shardName))
                throw new LoraFileException($"Index '{indexPath}': \"weight_map\" maps '{key}' to {value?.ToJsonString() ?? "null"}, not a file name.");
            weightMap[key] = shardName;
        }
        string? saveId = root["metadata"]?[SaveIdKey] is JsonValue id && id.TryGetValue<string>(out var text) ? text : null;
        return (weightMap, saveId);
    }

    public void Dispose()
    {
        foreach (var shard in shards)
            shard.Dispose();
    }
}
