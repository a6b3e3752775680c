using System.Globalization;

namespace LoraGen.Files;

/// <summary>
/// Checks an adapter's weights file against its own <c>adapter_config.json</c>, without a model and without
/// TorchSharp: every <c>lora_A</c> has its <c>lora_B</c> of the same family (Linear/conv or Embedding), both are
/// floating point, their shapes are a LoRA pair ([r, in, k…] and [out, r, 1…], or [r, num] and [dim, r]), and
/// r is the rank the config gives that path (<c>r</c>, or its <c>rank_pattern</c> entry). A rank the config
/// does not state would be read with the config's rank, so with the wrong scaling: <c>LoadAdapter</c> refuses
/// such a file, and <c>loragen inspect</c> and <c>merge</c> must refuse it in the same words.
/// </summary>
internal static class AdapterConsistency
{
    // PEFT's adapter parameter names after the module path (PeftLayout.SplitAdapterKey splits keys into these).
    private const string LinearA = PeftLayout.LoraA + ".weight", LinearB = PeftLayout.LoraB + ".weight";
    private const string EmbeddingA = PeftLayout.EmbeddingA, EmbeddingB = PeftLayout.EmbeddingB;
    private const int KeysShown = 3;

    /// <summary>Reads the file's keys against the config and lists every problem; throws only for a config
    /// pattern that takes too long to match (<see cref="AdapterConfig.ConfigFor"/>).</summary>
    /// <param name="config">The adapter's <c>adapter_config.json</c>.</param>
    /// <param name="weights">Its <c>adapter_model.safetensors</c>, opened; only the header is read.</param>
    /// <param name="keyPrefix">What precedes module paths in the keys (<see cref="AdapterFileOptions.KeyPrefix"/>).</param>
    public static AdapterContents Examine(AdapterConfig config, SafetensorsReader weights, string keyPrefix)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(keyPrefix);
        var problems = new List<string>();
        var unprefixed = new List<string>();
        var byPath = new SortedDictionary<string, List<(string Suffix, SafetensorsTensorInfo Tensor)>>(StringComparer.Ordinal);
        var saved = new List<(string Key, SafetensorsTensorInfo Tensor)>();
        foreach (var tensor in weights.Tensors)
        {
            if (!tensor.Name.StartsWith(keyPrefix, StringComparison.Ordinal))
            {
                unprefixed.Add(tensor.Name);
                continue;
            }
            string key = tensor.Name[keyPrefix.Length..];
            if (PeftLayout.SplitAdapterKey(key) is var (path, suffix))
                (byPath.TryGetValue(path, out var parts) ? parts : byPath[path] = []).Add((suffix, tensor));
            else
                saved.Add((key, tensor));
        }
        if (unprefixed.Count > 0)
            problems.Add($"{Count(unprefixed.Count, "key")} {(unprefixed.Count == 1 ? "does" : "do")} not start with the key prefix '{keyPrefix}' " +
                $"({string.Join(", ", unprefixed.Take(KeysShown).Select(k => $"'{k}'"))}{(unprefixed.Count > KeysShown ? ", …" : "")}): " +
                "the file was saved with another prefix; give that one (loragen --key-prefix, AdapterFileOptions.KeyPrefix)");

        var layers = new List<AdapterLayerTensors>();
        foreach (var (path, parts) in byPath)
            if (Pair(path, parts, config, problems) is { } layer)
                layers.Add(layer);
        return new AdapterContents(layers, saved, problems);
    }

    /// <summary><see cref="Examine"/>, then a <see cref="LoraFileException"/> listing every problem, if any.</summary>
    /// <param name="config">The adapter's <c>adapter_config.json</c>.</param>
    /// <param name="weights">Its <c>adapter_model.safetensors</c>, opened; only the header is read.</param>
    /// <param name="keyPrefix">What precedes module paths in the keys.</param>
    /// <param name="what">Names the adapter in the message, e.g. <c>Adapter 'out/adapter'</c>.</param>
    /// <exception cref="LoraFileException">The file disagrees with the config; the message lists every problem.</exception>
    public static AdapterContents Check(AdapterConfig config, SafetensorsReader weights, string keyPrefix, string what)
    {
        var contents = Examine(config, weights, keyPrefix);
        return contents.Problems.Count == 0 ? contents : throw new LoraFileException(Describe(what, contents.Problems));
    }

    /// <summary>The sentence for a list of problems: what disagrees, every problem, and what to do.</summary>
    public static string Describe(string what, IReadOnlyList<string> problems) =>
        $"{what} does not agree with its {AdapterConfig.FileName} ({Count(problems.Count, "problem")}): {string.Join("; ", problems)}. " +
        $"Keep an adapter's tensors with the config they were saved with: save it again (SaveAdapter, PEFT's save_pretrained), " +
        $"or correct r / rank_pattern in {AdapterConfig.FileName} to the ranks its tensors have.";

    private static AdapterLayerTensors? Pair(string path, List<(string Suffix, SafetensorsTensorInfo Tensor)> parts,
        AdapterConfig config, List<string> problems)
    {
        var magnitude = parts.Where(p => p.Suffix == PeftLayout.MagnitudeVector).Select(p => p.Tensor).FirstOrDefault();
        parts = parts.Where(p => p.Suffix != PeftLayout.MagnitudeVector).ToList();
        if (parts.Count == 0)
        {
            problems.Add($"'{path}': {PeftLayout.MagnitudeVector} {magnitude!.ShapeText} has no lora_A / lora_B");
            return null;
        }
        var halvesA = parts.Where(p => p.Suffix is LinearA or EmbeddingA).ToList();
        var halvesB = parts.Where(p => p.Suffix is LinearB or EmbeddingB).ToList();
        if (halvesA.Count > 1 || halvesB.Count > 1)
        {
            var both = halvesA.Count > 1 ? halvesA : halvesB;
            problems.Add($"'{path}' has both {Name(both[0].Suffix)} and {Name(both[1].Suffix)}; a layer has one adapter pair");
            return null;
        }
        if (halvesA.Count == 0 || halvesB.Count == 0)
        {
            var (suffix, tensor) = halvesA.Count == 0 ? halvesB[0] : halvesA[0];
            problems.Add($"'{path}': {Name(suffix)} {tensor.ShapeText} has no {Name(Partner(suffix))}");
            return null;
        }
        var (suffixA, a) = halvesA[0];
        var (suffixB, b) = halvesB[0];
        bool embedding = suffixA == EmbeddingA;
        if (embedding != (suffixB == EmbeddingB))
        {
            problems.Add($"'{path}': {Name(suffixA)} ({Family(suffixA)}) cannot pair with {Name(suffixB)} ({Family(suffixB)})");
            return null;
        }
        if (!a.DType.IsFloatingPoint() || !b.DType.IsFloatingPoint())
        {
            problems.Add($"'{path}': {Name(suffixA)} is {a.DType} and {Name(suffixB)} is {b.DType}; adapter matrices are floating point (F32, F16, BF16 or F64)");
            return null;
        }
        if (ShapeProblem(a, b, embedding) is { } shapeProblem)
        {
            problems.Add($"'{path}': {Name(suffixA)} {a.ShapeText} and {Name(suffixB)} {b.ShapeText} {shapeProblem}");
            return null;
        }
        long rank = a.Shape[0];
        var wanted = config.ConfigFor(path);
        if (wanted.Rank != rank)
        {
            // ConfigFor gives r unless a rank_pattern entry matched, so a rank other than r came from a pattern.
            string source = wanted.Rank != config.Rank ? "rank_pattern" : "r";
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"'{path}': {Name(suffixA)} {a.ShapeText} and {Name(suffixB)} {b.ShapeText} have rank {rank}, but {AdapterConfig.FileName} gives rank {wanted.Rank} ({source})"));
            return null;
        }
        var kind = embedding ? LoraLayerKind.Embedding : a.Shape.Count switch { 2 => LoraLayerKind.Linear, 3 => LoraLayerKind.Conv1d, _ => LoraLayerKind.Conv2d };
        if (MagnitudeProblem(magnitude, b, kind, config.UseDora) is { } magnitudeProblem)
        {
            problems.Add($"'{path}': {magnitudeProblem}");
            return null;
        }
        return new AdapterLayerTensors(path, kind, a, b, wanted, magnitude);
    }

    // DoRA: use_dora and lora_magnitude_vector go together; the vector is [out] (Linear), [dim] (Embedding) or
    // [1, out, 1…] (convolutions), out being B's first size.
    private static string? MagnitudeProblem(SafetensorsTensorInfo? magnitude, SafetensorsTensorInfo b, LoraLayerKind kind, bool useDora)
    {
        if (magnitude is null)
            return useDora ? $"{AdapterConfig.FileName} says use_dora, but the layer has no {PeftLayout.MagnitudeVector}" : null;
        if (!useDora)
            return $"{PeftLayout.MagnitudeVector} {magnitude.ShapeText} is a DoRA tensor, but {AdapterConfig.FileName} does not say use_dora: true";
        if (!magnitude.DType.IsFloatingPoint())
            return $"{PeftLayout.MagnitudeVector} is {magnitude.DType}; it must be floating point";
        long[] expected = kind is LoraLayerKind.Linear or LoraLayerKind.Embedding
            ? [b.Shape[0]]
            : [1, b.Shape[0], .. Enumerable.Repeat(1L, b.Shape.Count - 2)];
        return magnitude.Shape.SequenceEqual(expected)
            ? null
            : $"{PeftLayout.MagnitudeVector} is {magnitude.ShapeText}, but a DoRA {kind} with {b.Shape[0]} outputs has [{string.Join(", ", expected)}]";
    }

    // Null when A and B are a LoRA pair: Linear [r, in] · [out, r]; Conv1d [r, in, k] · [out, r, 1];
    // Conv2d [r, in, kh, kw] · [out, r, 1, 1]; Embedding [r, num] · [dim, r]. Every size at least 1.
    private static string? ShapeProblem(SafetensorsTensorInfo a, SafetensorsTensorInfo b, bool embedding)
    {
        if (embedding && (a.Shape.Count != 2 || b.Shape.Count != 2))
            return "must both be 2-D: [r, num] and [dim, r]";
        if (!embedding && (a.Shape.Count is < 2 or > 4 || b.Shape.Count != a.Shape.Count || b.Shape.Skip(2).Any(size => size != 1)))
            return "are not a LoRA pair: [r, in] and [out, r] (Linear), [r, in, k] and [out, r, 1] (Conv1d), or [r, in, kh, kw] and [out, r, 1, 1] (Conv2d)";
        if (a.Shape.Concat(b.Shape).Any(size => size < 1))
            return "have a size 0";
        if (a.Shape[0] > int.MaxValue)
            return "have a rank over 2³¹";
        return b.Shape[1] == a.Shape[0]
            ? null
            : string.Create(CultureInfo.InvariantCulture, $"disagree on the rank: {a.Shape[0]} in A, {b.Shape[1]} in B");
    }

    private static string Name(string suffix) => suffix;

    private static string Partner(string suffix) => suffix switch
    {
        LinearA => LinearB,
        LinearB => LinearA,
        EmbeddingA => EmbeddingB,
        _ => EmbeddingA,
    };

    private static string Family(string suffix) => suffix is EmbeddingA or EmbeddingB ? "Embedding" : "Linear and convolutions";

    private static string Count(int count, string noun) =>
        string.Create(CultureInfo.InvariantCulture, $"{count} {noun}{(count == 1 ? "" : "s")}");
}
