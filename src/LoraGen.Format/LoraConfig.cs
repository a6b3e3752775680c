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

    /// <summary>DoRA (PEFT's <c>use_dora</c>): the adapted weight is rescaled per output by a trained magnitude vector,
    /// <c>W' = m · (W + scaling·B·A) / ‖W + scaling·B·A‖</c>, the norm taken per output and treated as a constant in
    /// backward.</summary>
    public bool UseDora { get; init; }

    /// <summary>With <see cref="LoraInit.Pissa"/>: null for the exact SVD (PEFT's <c>"pissa"</c>), or the number of
    /// power iterations of a randomized SVD (PEFT's <c>"pissa_niter_N"</c>), much faster on large weights.</summary>
    public int? PissaIterations { get; init; }

    /// <summary>PEFT's <c>init_lora_weights</c> value for <see cref="Init"/>: <c>true</c>, <c>"gaussian"</c>, <c>"pissa"</c>,
    /// <c>"pissa_niter_N"</c> or <c>"olora"</c>.</summary>
    public string PeftInitName => Init switch
    {
        LoraInit.Gaussian => "gaussian",
        LoraInit.Pissa => PissaIterations is { } n ? "pissa_niter_" + n.ToString(System.Globalization.CultureInfo.InvariantCulture) : "pissa",
        LoraInit.Olora => "olora",
        _ => "true",
    };

    /// <summary>Whether the initialisation rewrites the base weight (PiSSA, OLoRA).</summary>
    public bool RewritesBase => Init is LoraInit.Pissa or LoraInit.Olora;

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
        if (PissaIterations is { } iterations && (iterations < 0 || Init != LoraInit.Pissa))
            throw new LoraConfigurationException(target, iterations < 0
                ? $"PissaIterations must be at least 0, but it is {iterations}."
                : $"PissaIterations is set, but Init is {Init}: it only applies to LoraInit.Pissa.");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new LoraConfigurationException(target,
                $"dropout must be in [0, 1), but it is {Dropout.ToString(System.Globalization.CultureInfo.InvariantCulture)}. Use 0 for none, or e.g. 0.05.");
    }
}
