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
        string remedy = (shape.MaxSavingRank, shape.HalfSavingRank) switch
        {
            (0, _) => "No rank saves parameters on a layer this small: leave it out of Targets",
            (var max, 0) => string.Create(CultureInfo.InvariantCulture, $"Use a rank of at most {max}"),
            (var max, var half) => string.Create(CultureInfo.InvariantCulture,
                $"Use a rank of at most {max} (rank {half} keeps at least half of them saved)"),
        };
        throw new LoraConfigurationException(target, string.Create(CultureInfo.InvariantCulture,
            $"rank {config.Rank} on {shape} gives {shape.AdapterParameters(config.Rank):N0} adapter parameters, " +
            $"not fewer than the {shape.BaseWeightParameters:N0} in the layer itself, so LoRA saves nothing. " +
            $"{remedy}, or set LoraOptions.AllowNoSavings = true if this is intended."));
    }
}
