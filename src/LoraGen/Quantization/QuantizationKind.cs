namespace LoraGen;

/// <summary>How a frozen base weight is stored: float (<see cref="None"/>, the default) or quantized in a
/// <see cref="QuantizedLinear"/> (QLoRA).</summary>
public enum QuantizationKind
{
    /// <summary>Not quantized: the base stays a float Linear.</summary>
    None,

    /// <summary>One signed byte per weight, scaled by the absolute maximum of its output row (LLM.int8()'s
    /// vector-wise quantization without the outlier decomposition).</summary>
    Int8,

    /// <summary>4-bit NormalFloat (bitsandbytes' 16 values), blocks of 64 weights with a float32 absmax each,
    /// two codes per byte.</summary>
    Nf4,

    /// <summary><see cref="Nf4"/> with double quantization: the per-block absmax constants minus their mean are
    /// stored as 8-bit codes of bitsandbytes' dynamic map in blocks of 256 (bitsandbytes' <c>compress_statistics=True</c>).</summary>
    Nf4DoubleQuantized,
}
