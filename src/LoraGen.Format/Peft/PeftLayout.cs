namespace LoraGen.Files;

/// <summary>
/// How PEFT names a LoRA model's parts, written once: the in-memory names of a wrapped layer's children
/// (<c>base_layer</c>, <c>lora_A</c>, <c>lora_B</c>, <c>lora_embedding_A/B</c>), the key prefix of adapter files
/// (<c>base_model.model.</c>), and the splitting of a key into module path and adapter part. The runtime's layers,
/// the adapter reader and checks, the offline merge, checkpoints and the loragen tool all use these.
/// </summary>
public static class PeftLayout
{
    /// <summary>What PEFT puts before every module path in an adapter file (the PeftModel wrapper and its LoraModel).</summary>
    public const string KeyPrefix = "base_model.model.";

    /// <summary>The wrapped layer, as a child of its LoRA layer: <c>q_proj.base_layer.weight</c>.</summary>
    public const string BaseLayer = "base_layer";

    /// <summary>The down projection of Linear and convolution adapters (a layer with a <c>weight</c>): [r, in, k…].</summary>
    public const string LoraA = "lora_A";

    /// <summary>The up projection of Linear and convolution adapters: [out, r, 1…].</summary>
    public const string LoraB = "lora_B";

    /// <summary>An embedding adapter's A, a bare parameter: [r, num].</summary>
    public const string EmbeddingA = "lora_embedding_A";

    /// <summary>An embedding adapter's B, a bare parameter: [dim, r].</summary>
    public const string EmbeddingB = "lora_embedding_B";

    /// <summary>DoRA's magnitude vector: in files a bare tensor (<c>q_proj.lora_magnitude_vector</c>), in memory the
    /// <c>weight</c> of a module per adapter (<c>q_proj.lora_magnitude_vector.default.weight</c>), as PEFT names it.
    /// [out] for Linear, [dim] for Embedding, [1, out, 1…] for convolutions.</summary>
    public const string MagnitudeVector = "lora_magnitude_vector";

    /// <summary>The parameter names inside a LoRA layer, as they end a key: <c>lora_A.weight</c>, <c>lora_B.weight</c>,
    /// <c>lora_embedding_A</c>, <c>lora_embedding_B</c>, and DoRA's <c>lora_magnitude_vector</c>.</summary>
    public static IReadOnlyList<string> AdapterParameterNames { get; } = [LoraA + ".weight", LoraB + ".weight", EmbeddingA, EmbeddingB, MagnitudeVector];

    /// <summary>Splits an adapter key (without its prefix) into the module path and the adapter parameter name as PEFT
    /// writes it in files (one of <see cref="AdapterParameterNames"/>); null for any other key, such as a
    /// <c>modules_to_save</c> tensor. In-memory names with an adapter name (<c>x.lora_A.default.weight</c>,
    /// <c>x.lora_embedding_A.default</c>, as a whole-model checkpoint holds them) split the same way.</summary>
    public static (string Path, string Parameter)? SplitAdapterKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        foreach (var name in AdapterParameterNames)
            if (key.Length > name.Length + 1 && key.EndsWith(name, StringComparison.Ordinal) && key[^(name.Length + 1)] == '.')
                return (key[..^(name.Length + 1)], name);
        // path.lora_A.<adapter>.weight, path.lora_embedding_A.<adapter>
        var parts = key.Split('.');
        if (parts.Length >= 4 && parts[^1] == "weight" && parts[^3] is LoraA or LoraB or MagnitudeVector)
            return (string.Join('.', parts[..^3]), parts[^3] is MagnitudeVector ? MagnitudeVector : parts[^3] + ".weight");
        if (parts.Length >= 3 && parts[^2] is EmbeddingA or EmbeddingB)
            return (string.Join('.', parts[..^2]), parts[^2]);
        return null;
    }

    /// <summary>Whether a parameter name inside a LoRA layer is A (the down projection) rather than B.</summary>
    public static bool IsA(string parameterName) => parameterName is LoraA + ".weight" or EmbeddingA;

    /// <summary>Whether a parameter name belongs to an embedding adapter.</summary>
    public static bool IsEmbedding(string parameterName) => parameterName is EmbeddingA or EmbeddingB;

    /// <summary>A key of a model with LoRA applied as the plain model names it: <c>x.base_layer.weight</c> →
    /// <c>x.weight</c> (what PEFT does when a base is loaded under, or saved from, a PEFT model).</summary>
    public static string WithoutBaseLayer(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.Replace("." + BaseLayer + ".", ".", StringComparison.Ordinal) is var inner && inner.StartsWith(BaseLayer + ".", StringComparison.Ordinal)
            ? inner[(BaseLayer.Length + 1)..]
            : inner;
    }
}
