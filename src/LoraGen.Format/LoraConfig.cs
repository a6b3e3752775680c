namespace LoraGen;

/// <summary>
/// The hyperparameters of one adapter: what <c>[LoraTarget]</c> says for one field.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>The rank r of the update B·A.</summary>
    public int Rank { get; init; } = 8;

    /// <summary>The LoRA alpha; <c>null</c> means "same as <see cref="Rank"/>" (scaling 1).</summary>
    public double? Alpha { get; init; }

    /// <summary>Dropout probability on the adapter's input, in training mode only.</summary>
    public double Dropout { get; init; }

    /// <summary>Scale by Alpha / √Rank instead of Alpha / Rank.</summary>
    public bool UseRsLora { get; init; }

    /// <summary>How the adapter matrices are initialised.</summary>
    public LoraInit Init { get; init; }

    /// <summary>The alpha in effect: <see cref="Alpha"/>, or <see cref="Rank"/> when unset.</summary>
    public double EffectiveAlpha => Alpha ?? Rank;

    /// <summary>The factor the update is multiplied by: alpha / r, or alpha / √r with rsLoRA.</summary>
    public double Scaling => UseRsLora ? EffectiveAlpha / Math.Sqrt(Rank) : EffectiveAlpha / Rank;

    /// <summary>Checks the hyperparameters and throws <see cref="LoraConfigurationException"/>, naming
    /// <paramref name="target"/> and the offending value, when one makes no sense.</summary>
    public void Validate(string target)
    {
        if (Rank < 1)
            throw new LoraConfigurationException(target,
                $"rank must be at least 1, but it is {Rank}. Use a small positive rank such as 8.");
        if (Alpha is { } alpha && (!double.IsFinite(alpha) || alpha <= 0))
            throw new LoraConfigurationException(target,
                $"alpha must be a finite number greater than 0, but it is {alpha.ToString(System.Globalization.CultureInfo.InvariantCulture)}. " +
                "Leave it unset for alpha = rank (scaling 1), or use e.g. 2 × rank.");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new LoraConfigurationException(target,
                $"dropout must be in [0, 1), but it is {Dropout.ToString(System.Globalization.CultureInfo.InvariantCulture)}. Use 0 for none, or e.g. 0.05.");
    }
}
