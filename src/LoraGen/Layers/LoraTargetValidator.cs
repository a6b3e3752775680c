using System.Globalization;

namespace LoraGen;

/// <summary>The run-time checks that mirror the analyzers for what only the running model knows.</summary>
internal static class LoraTargetValidator
{
    /// <summary>Throws <see cref="LoraConfigurationException"/> for bad hyperparameters, or for an
    /// adapter that would hold at least as many parameters as the layer it adapts.</summary>
    public static void Validate(string target, LoraLayerShape shape, LoraConfig config, LoraOptions options)
    {
        config.Validate(target);
        if (options.AllowNoSavings || shape.SavesParameters(config.Rank))
            return;
        long maxRank = MaxSavingRank(shape);
        string remedy = maxRank >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"Use a rank of at most {maxRank} (e.g. {SuggestedRank(shape)})")
            : "No rank saves parameters on a layer this small: leave it out of Targets";
        throw new LoraConfigurationException(target, string.Create(CultureInfo.InvariantCulture,
            $"rank {config.Rank} on {shape} gives {shape.AdapterParameters(config.Rank):N0} adapter parameters, " +
            $"not fewer than the {shape.BaseWeightParameters:N0} in the layer itself, so LoRA saves nothing. " +
            $"{remedy}, or set LoraOptions.AllowNoSavings = true if this is intended."));
    }

    /// <summary>The largest rank whose adapter is still smaller than the layer (0 if none is).</summary>
    public static long MaxSavingRank(LoraLayerShape shape)
    {
        long perRank = shape.InFeatures * shape.KernelElements + shape.OutFeatures;
        return (shape.BaseWeightParameters - 1) / perRank;
    }

    /// <summary>A rank worth suggesting: a power of two, at most 8, well inside the saving range.</summary>
    public static long SuggestedRank(LoraLayerShape shape)
    {
        long limit = Math.Max(1, MaxSavingRank(shape) / 2);
        long rank = 1;
        while (rank * 2 <= Math.Min(limit, 8))
            rank *= 2;
        return rank;
    }
}
