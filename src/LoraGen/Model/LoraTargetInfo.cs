namespace LoraGen;

/// <summary>One field a <see cref="LoraTargetAttribute"/> class adapts, and its options.</summary>
/// <param name="Field">The field's name, which is also its name in the module registry.</param>
/// <param name="Config">The adapter's hyperparameters (the class's, overridden by the field's attribute).</param>
public sealed record LoraTargetInfo(string Field, LoraConfig Config)
{
    /// <summary>The layer kind, when the compiler could see what the field is assigned.</summary>
    public LoraLayerKind? Kind { get; init; }

    /// <summary>The layer's sizes, when the factory's arguments are compile-time constants.</summary>
    public LoraLayerShape? Shape { get; init; }

    /// <summary>How the attribute asks for the base to be stored (<c>[LoraTarget(Quantize = ...)]</c>): QLoRA for a
    /// Linear target; <see cref="QuantizationKind.None"/> (float) by default. <see cref="LoraOptions.Quantize"/>
    /// overrides it.</summary>
    public QuantizationKind Quantize { get; init; }
}
