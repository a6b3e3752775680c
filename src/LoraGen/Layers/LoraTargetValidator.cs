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
        if (options.Quantize != QuantizationKind.None && shape.Kind == LoraLayerKind.Linear)
            ValidateOverQuantized(target, config);
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

    /// <summary>Throws <see cref="LoraConfigurationException"/> for what a quantized (QLoRA) base cannot take: DoRA
    /// (its magnitude needs the weight's norm at every step, and its merge rescales the whole weight) and PiSSA/OLoRA
    /// (they rewrite the base weight to a residual, which would have to be re-quantized).</summary>
    public static void ValidateOverQuantized(string target, LoraConfig config)
    {
        if (config.UseDora)
            throw new LoraConfigurationException(target,
                "UseDora = true over a quantized base (LoraOptions.Quantize, [LoraTarget(Quantize = ...)], or a QuantizedLinear) is not supported: DoRA " +
                "needs the base weight's norm at every step and rescales the whole weight when merged. Use plain LoRA on a " +
                "quantized base, or DoRA on a float base (QuantizationKind.None).");
        if (config.RewritesBase)
            throw new LoraConfigurationException(target,
                $"Init = LoraInit.{config.Init} over a quantized base (LoraOptions.Quantize, [LoraTarget(Quantize = ...)], or a QuantizedLinear) is not " +
                "supported: it rewrites the base weight to the residual W - B·A, which would have to be re-quantized (and " +
                "rounded). Use LoraInit.Default or LoraInit.Gaussian on a quantized base, or a float base.");
    }
}
