using System.Globalization;
using LoraGen.SourceShared;

namespace LoraGen;

/// <summary>The run-time checks that mirror the analyzers for what only the running model knows.</summary>
internal static class LoraTargetValidator
{
    /// <summary>Throws <see cref="LoraConfigurationException"/> for bad hyperparameters, or for an
    /// adapter that would hold at least as many parameters as the layer it adapts.</summary>
    public static void Validate(string target, LoraLayerShape shape, LoraConfig config, LoraOptions options)
    {
        config.Validate(target);
        if (config.RewritesBase && shape.Kind != LoraLayerKind.Linear)
            throw new LoraConfigurationException(target,
                $"Init = LoraInit.{config.Init} starts the adapter from the base weight's decomposition, which PEFT (and LoraGen) " +
                $"defines for Linear layers only, not for {shape.Kind}. Use LoraInit.Default or LoraInit.Gaussian on this layer.");
        if (config.RewritesBase && config.Rank > Math.Min(shape.InFeatures, shape.OutFeatures))
            throw new LoraConfigurationException(target, string.Create(CultureInfo.InvariantCulture,
                $"Init = LoraInit.{config.Init} takes r = {config.Rank} components of the weight of {shape}, which has only " +
                $"{Math.Min(shape.InFeatures, shape.OutFeatures)}. Use a rank of at most {Math.Min(shape.InFeatures, shape.OutFeatures)}."));
        if (options.AllowNoSavings || shape.SavesParameters(config.Rank))
            return;
        var budget = new LayerBudget(shape.InFeatures, shape.OutFeatures, shape.KernelElements);
        throw new LoraConfigurationException(target, string.Create(CultureInfo.InvariantCulture,
            $"rank {config.Rank} on {shape} {LayerDescription.NoSavings(shape.Kind.ToString(), budget, config.Rank)}; " +
            $"{LayerDescription.Remedy(budget)}, or set LoraOptions.AllowNoSavings = true if this is intended."));
    }
}
