namespace LoraGen.Files;

/// <summary>One adapted layer as an adapter file holds it: its module path (as written in the keys, without the
/// prefix), its A and B, and what the file's <c>adapter_config.json</c> gives that path. Only
/// <see cref="AdapterConsistency"/> makes these, for pairs that passed every check, so the shapes can be trusted.</summary>
/// <param name="Path">The module path, e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
/// <param name="Kind">Embedding for <c>lora_embedding_A/B</c>; otherwise Linear, Conv1d or Conv2d by A's dimensions.</param>
/// <param name="A">lora_A: [r, in, k…] (Linear, conv) or [r, num] (Embedding).</param>
/// <param name="B">lora_B: [out, r, 1…] (Linear, conv) or [dim, r] (Embedding).</param>
/// <param name="Config">Rank, alpha and scaling from the config (its rank equals <see cref="Rank"/>).</param>
/// <param name="Magnitude">DoRA's <c>lora_magnitude_vector</c>, or null for plain LoRA.</param>
internal sealed record AdapterLayerTensors(string Path, LoraLayerKind Kind, SafetensorsTensorInfo A, SafetensorsTensorInfo B, LoraConfig Config,
    SafetensorsTensorInfo? Magnitude = null)
{
    /// <summary>The rank r: A's first size, B's second.</summary>
    public int Rank => (int)A.Shape[0];

    /// <summary>The base weight this adapter updates: [out, in, k…] from B and A, or an embedding's [num, dim].</summary>
    public IReadOnlyList<long> WeightShape => Kind == LoraLayerKind.Embedding
        ? [A.Shape[1], B.Shape[0]]
        : [B.Shape[0], .. A.Shape.Skip(1)];
}
