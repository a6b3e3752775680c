namespace LoraGen;

/// <summary>
/// Marks a TorchSharp module class (or one of its fields) for LoRA adaptation. The LoraGen source
/// generator writes the wrapping, freezing and merging code for every class that carries it; a field
/// attribute overrides the class's options for that field.
/// </summary>
/// <example>
/// <code>
/// [LoraTarget(Rank = 8, Alpha = 16, Targets = ["q_proj", "v_proj"])]
/// public partial class Attention : Module&lt;Tensor, Tensor&gt; { ... }
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Field, AllowMultiple = false, Inherited = false)]
public sealed class LoraTargetAttribute : Attribute
{
    private double? alpha;

    /// <summary>The rank r of the update B·A. Default 8.</summary>
    public int Rank { get; set; } = 8;

    /// <summary>The LoRA alpha; the update is scaled by Alpha / Rank (or Alpha / √Rank with
    /// <see cref="UseRsLora"/>). Defaults to <see cref="Rank"/>, i.e. a scaling of 1.</summary>
    public double Alpha
    {
        get => alpha ?? Rank;
        set => alpha = value;
    }

    /// <summary>Dropout probability applied to the adapter's input in training mode. Default 0.</summary>
    public double Dropout { get; set; }

    /// <summary>Names of the fields to adapt. Default: every field holding a supported layer
    /// (Linear, Embedding, Conv1d, Conv2d), except those in <see cref="Exclude"/> or <see cref="Trainable"/>.</summary>
    public string[] Targets { get; set; } = [];

    /// <summary>Names of fields never to adapt, even when they hold a supported layer.</summary>
    public string[] Exclude { get; set; } = [];

    /// <summary>Fields trained in full next to the adapters (PEFT's <c>modules_to_save</c>), e.g. a new
    /// classification head. They are not adapted: naming one in <see cref="Targets"/> too is LORA0011.</summary>
    public string[] Trainable { get; set; } = [];

    /// <summary>Scale the update by Alpha / √Rank (rank-stabilised LoRA) instead of Alpha / Rank.</summary>
    public bool UseRsLora { get; set; }

    /// <summary>How the adapter matrices are initialised.</summary>
    public LoraInit Init { get; set; }

    /// <summary>DoRA (PEFT's <c>use_dora</c>): a trained magnitude per output rescales the adapted weight; see
    /// <see cref="LoraConfig.UseDora"/>.</summary>
    public bool UseDora { get; set; }

    /// <summary>QLoRA: store the frozen base of the adapted Linear layers quantized
    /// (<see cref="QuantizationKind.Nf4"/>, <see cref="QuantizationKind.Nf4DoubleQuantized"/> or
    /// <see cref="QuantizationKind.Int8"/>) when ApplyLora wraps them; Embedding and convolution targets stay float.
    /// Default <see cref="QuantizationKind.None"/> (float). <see cref="LoraOptions.Quantize"/>, when set, overrides it;
    /// <see cref="LoraOptions.QuantizeFrozenLinears"/> quantizes the other frozen Linears too. Not with
    /// <see cref="UseDora"/> or a PiSSA/OLoRA <see cref="Init"/> (LORA0014). See docs/qlora.md.</summary>
    public QuantizationKind Quantize { get; set; }
}
