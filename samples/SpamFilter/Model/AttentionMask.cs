using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>The attention mask as BERT applies it: added to the attention scores before the softmax.</summary>
public static class AttentionMask
{
    /// <summary>
    /// [batch, 1, 1, length] of 0 where <paramref name="mask"/> [batch, length] is 1 (a token) and the dtype's lowest
    /// finite value where it is 0 (padding), as transformers' <c>get_extended_attention_mask</c>: a padded key then
    /// gets probability exp(−3.4e38) = 0 exactly, and no score overflows to −∞ (a NaN in a fully masked row).
    /// </summary>
    public static Tensor Additive(Tensor mask, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var keep = mask.to_type(dtype).unsqueeze(1).unsqueeze(2);
        double lowest = dtype switch
        {
            ScalarType.Float32 => float.MinValue,
            ScalarType.Float64 => double.MinValue,
            ScalarType.Float16 => -65504.0,
            ScalarType.BFloat16 => -3.3895313892515355e38,
            _ => throw new ArgumentException($"Attention scores of type {dtype} are not supported.", nameof(dtype)),
        };
        return ((1.0 - keep) * lowest).MoveToOuterDisposeScope();
    }
}
