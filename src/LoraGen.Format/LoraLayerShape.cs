using LoraGen.SourceShared;

namespace LoraGen;

/// <summary>
/// The sizes that decide what an adapter costs. One formula covers every kind: with k the number of
/// kernel elements (1 for Linear and Embedding), the base weight holds in·out·k numbers and an
/// adapter of rank r holds r·(in·k + out). For an embedding, in is the vocabulary size and out the
/// embedding dimension.
/// </summary>
/// <param name="Kind">The layer type.</param>
/// <param name="InFeatures">Input features, input channels, or number of embeddings.</param>
/// <param name="OutFeatures">Output features, output channels, or the embedding dimension.</param>
/// <param name="KernelElements">Product of the kernel sizes; 1 for Linear and Embedding.</param>
public readonly record struct LoraLayerShape(LoraLayerKind Kind, long InFeatures, long OutFeatures, long KernelElements = 1)
{
    private LayerBudget Budget => new(InFeatures, OutFeatures, KernelElements);

    /// <summary>Numbers in the base weight: in·out·k.</summary>
    public long BaseWeightParameters => Budget.LayerParameters;

    /// <summary>Numbers in an adapter of rank <paramref name="rank"/>: r·(in·k + out).</summary>
    public long AdapterParameters(int rank) => Budget.AdapterParameters(rank);

    /// <summary>Whether an adapter of this rank is smaller than the weight it adapts.</summary>
    public bool SavesParameters(int rank) => Budget.Saves(rank);

    /// <summary>The largest rank whose adapter is smaller than the layer; 0 when even rank 1 is not.</summary>
    public long MaxSavingRank => Budget.MaxSavingRank;

    /// <summary>The largest rank whose adapter holds at most half the layer's numbers, the rank the
    /// analyzers' fix suggests; 0 when even rank 1 holds more.</summary>
    public long HalfSavingRank => Budget.HalfSavingRank;

    /// <summary>The layer as a person would write it, e.g. "Linear 512→512" or "Conv2d 3→16, 9-element kernel".</summary>
    public override string ToString() => LayerDescription.Describe(Kind.ToString(), InFeatures, OutFeatures, KernelElements);
}
