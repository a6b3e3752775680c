using static TorchSharp.torch;

namespace LoraGen;

/// <summary>Run-time choices for <see cref="LoraModelExtensions.ApplyLora(TorchSharp.torch.nn.Module, LoraOptions?)"/>;
/// the per-layer hyperparameters come from <see cref="LoraTargetAttribute"/> or from a run-time
/// <see cref="Files.AdapterConfig"/>.</summary>
public sealed record LoraOptions
{
    /// <summary>The default options.</summary>
    public static LoraOptions Default { get; } = new();

    /// <summary>
    /// Allow adapters that hold at least as many parameters as the layer they adapt
    /// (r·(in+out) ≥ in·out). Off by default: such an adapter cancels LoRA's savings and is
    /// almost always a mistaken rank.
    /// </summary>
    public bool AllowNoSavings { get; init; }

    /// <summary>
    /// Let <c>ApplyLora</c> succeed when the annotated classes have no target it can
    /// adapt, and train only their <c>Trainable</c> fields (or nothing). Off by default: a model with no adapter is
    /// almost always a mistake (a layer held in a <c>Sequential</c> instead of a field), and would otherwise
    /// train nothing without a word.
    /// </summary>
    public bool AllowNoAdapters { get; init; }

    /// <summary>
    /// Changes a target's options at run time (a rank from a command line, a search over ranks): given the
    /// target's path in the model (<c>blocks.0.attention.q_proj</c>) and the options its
    /// <see cref="LoraTargetAttribute"/> states, returns the options to use. The run-time checks apply to
    /// the result. Null: the attributes' options, which the analyzers checked at compile time.
    /// </summary>
    public Func<string, LoraConfig, LoraConfig>? Reconfigure { get; init; }

    /// <summary>
    /// The output head that <c>target_modules = "all-linear"</c> leaves out, by path (PEFT leaves out a transformers
    /// model's output embeddings or classification head). Null: the model's last Linear when it or its container has
    /// a head's name (<c>lm_head</c>, <c>classifier</c>, <c>score</c>, <c>fc</c>, <c>head</c>, <c>output</c>, …),
    /// else none. <c>""</c>: leave out nothing.
    /// </summary>
    public string? OutputLayer { get; init; }

    /// <summary>The dtype of the adapter matrices. Float32 by default, even over a bf16 or fp16
    /// base, as in PEFT: inputs are cast to it and the sum is cast back to the base's dtype.</summary>
    public ScalarType AdapterDType { get; init; } = ScalarType.Float32;

    /// <summary>
    /// QLoRA: store the frozen base of every adapted Linear quantized (<see cref="QuantizationKind.Nf4"/>,
    /// <see cref="QuantizationKind.Nf4DoubleQuantized"/> or <see cref="QuantizationKind.Int8"/>). ApplyLora, LoadAdapter
    /// and AddAdapter replace each Linear they wrap by a <see cref="QuantizedLinear"/> (the float Linear is disposed;
    /// its parameters become buffers <c>base_layer.codes</c>, <c>base_layer.absmax</c>, …) under the
    /// <see cref="LoraLinear"/>. A layer that already is a QuantizedLinear is wrapped as it is. Embedding and
    /// convolution targets stay float. <see cref="QuantizationKind.None"/> (the default): float bases, unless a
    /// <c>[LoraTarget(Quantize = ...)]</c> attribute asks for a quantized one (a kind set here overrides the attributes';
    /// there is no run-time switch back to float for those: drop the attribute's Quantize). DoRA and
    /// PiSSA/OLoRA are refused with it. See docs/qlora.md.
    /// </summary>
    public QuantizationKind Quantize { get; init; }

    /// <summary>
    /// With <see cref="Quantize"/> (or, without it, the kind the <c>[LoraTarget]</c> attributes ask for): also replace every other frozen Linear of the model (not adapted, not trained in
    /// full) by a <see cref="QuantizedLinear"/> at the same path, so the whole frozen model is quantized. Its
    /// <c>weight</c> and <c>bias</c> parameters become buffers (<c>codes</c>, <c>absmax</c>, <c>bias</c>, …). A Linear
    /// held in a field declared <c>Linear</c> (which cannot hold another module type) is left in float32. Off by default.
    /// </summary>
    public bool QuantizeFrozenLinears { get; init; }

    /// <summary>
    /// With <see cref="Quantize"/> (or the attributes' kind): also replace every frozen Embedding (not adapted, not
    /// trained in full) by a <see cref="QuantizedEmbedding"/> at the same path; its <c>weight</c> becomes buffers
    /// (<c>codes</c>, <c>absmax</c>, …). An Embedding whose dimension is not a multiple of 64 stays float under NF4 (a row
    /// must be whole blocks), as does one held in a field declared <c>Embedding</c>. Off by default: transformers'
    /// <c>load_in_4bit</c> leaves embeddings float too, but on a small model the embedding is most of the frozen bytes.
    /// </summary>
    public bool QuantizeFrozenEmbeddings { get; init; }
}
