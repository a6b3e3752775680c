namespace LoraGen;

/// <summary>One field a <see cref="LoraTargetAttribute"/> class adapts, and its options.</summary>
/// <param name="Field">The field's name, which is also its name in the module registry.</param>
/// <param name="Config">The adapter's hyperparameters (the class's, overridden by the field's attribute).</param>
public sealed record LoraTargetInfo(string Field, LoraConfig Config);
