namespace LoraGen.SourceShared;

/// <summary>
/// What an adapter costs next to the layer it adapts. With k the number of kernel elements (1 for
/// Linear and Embedding), the base weight holds in·out·k numbers and a rank-r adapter r·(in·k + out).
/// Plain arithmetic, shared by the analyzers (compile time) and the runtime (run time).
/// </summary>
internal readonly struct LayerBudget
{
    public LayerBudget(long inFeatures, long outFeatures, long kernelElements)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        KernelElements = kernelElements;
    }

    public long InFeatures { get; }
    public long OutFeatures { get; }
    public long KernelElements { get; }

    /// <summary>Numbers in the base weight: in·out·k.</summary>
    public long LayerParameters => InFeatures * OutFeatures * KernelElements;

    /// <summary>Numbers per unit of rank: in·k + out.</summary>
    public long ParametersPerRank => InFeatures * KernelElements + OutFeatures;

    /// <summary>The rank at which B·A can express any update of the weight: min(in·k, out).</summary>
    public long FullRank => System.Math.Min(InFeatures * KernelElements, OutFeatures);

    public long AdapterParameters(long rank) => rank * ParametersPerRank;

    /// <summary>Whether a rank-<paramref name="rank"/> adapter holds fewer numbers than the layer.</summary>
    public bool Saves(long rank) => AdapterParameters(rank) < LayerParameters;

    /// <summary>The largest rank whose adapter holds fewer numbers than the layer (0 when none does).</summary>
    public long MaxSavingRank => ParametersPerRank <= 0 ? 0 : (LayerParameters - 1) / ParametersPerRank;

    /// <summary>The largest rank whose adapter holds at most half the layer's numbers
    /// (0 when even rank 1 holds more).</summary>
    public long HalfSavingRank => ParametersPerRank <= 0 ? 0 : LayerParameters / (2 * ParametersPerRank);
}
