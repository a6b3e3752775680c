using System.Globalization;

namespace LoraGen.SourceShared;

/// <summary>
/// How a layer and its parameter budget are written, once for the generator's plan comments, the
/// analyzers' messages, the runtime's errors and the CLI: "Linear 512→512", "Embedding 1,000×64",
/// "Conv2d 3→16, 9-element kernel"; "needs 4·(8 + 8) = 64 adapter parameters, not fewer than the 64
/// of the layer itself (in·out), so the adapter saves nothing"; and what to do about it.
/// </summary>
internal static class LayerDescription
{
    /// <summary>The layer as a person would write it. <paramref name="kind"/> is a <see cref="LayerKinds"/>
    /// name (any other name reads as a convolution's).</summary>
    public static string Describe(string kind, long inFeatures, long outFeatures, long kernelElements) => kind switch
    {
        LayerKinds.Embedding => $"Embedding {Count(inFeatures)}×{Count(outFeatures)}",
        LayerKinds.Linear => $"Linear {Plain(inFeatures)}→{Plain(outFeatures)}",
        _ => $"{kind} {Plain(inFeatures)}→{Plain(outFeatures)}, {Plain(kernelElements)}-element kernel",
    };

    /// <summary>"needs 4·(8 + 8) = 64 adapter parameters, not fewer than the 64 of the layer itself (in·out),
    /// so the adapter saves nothing": why a rank-<paramref name="rank"/> adapter does not pay off.</summary>
    public static string NoSavings(string kind, LayerBudget budget, long rank)
    {
        string perRank = budget.KernelElements == 1
            ? $"{Count(budget.InFeatures)} + {Count(budget.OutFeatures)}"
            : $"{Count(budget.InFeatures)}·{Count(budget.KernelElements)} + {Count(budget.OutFeatures)}";
        string layerFormula = kind switch
        {
            LayerKinds.Embedding => "num·dim",
            LayerKinds.Linear => "in·out",
            _ => "out·in·k",
        };
        return $"needs {Count(rank)}·({perRank}) = {Count(budget.AdapterParameters(rank))} adapter parameters, " +
            $"not fewer than the {Count(budget.LayerParameters)} of the layer itself ({layerFormula}), so the adapter saves nothing";
    }

    /// <summary>What to do about a rank that saves nothing (or restricts nothing): the largest rank that
    /// saves, and the rank that keeps half saved (the analyzers' fix); or leave the layer out.</summary>
    public static string Remedy(LayerBudget budget)
    {
        if (budget.MaxSavingRank < 1)
            return "no rank saves parameters on a layer this small; leave it out of the targets";
        if (budget.HalfSavingRank < 1)
            return $"use a rank of at most {Count(budget.MaxSavingRank)}, or leave it out of the targets: even Rank = 1 saves less than half of this small layer";
        return $"use a rank of at most {Count(budget.MaxSavingRank)} (Rank = {Count(budget.HalfSavingRank)} keeps at least half of the layer's {Count(budget.LayerParameters)} parameters saved)";
    }

    /// <summary>A count with thousands separators, whatever the culture: 1,000.</summary>
    public static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Plain(long value) => value.ToString(CultureInfo.InvariantCulture);
}
