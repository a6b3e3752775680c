using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Row-wise int8 as bitsandbytes' <c>int8_vectorwise_quant</c> (threshold 0, no outliers) and
/// <c>int8_vectorwise_dequant</c>: per output row the absmax s (float32); code = round-half-even(w · (127 · (1/s)));
/// value = code · s · 7.874015718698502e-3 (1/127, as bitsandbytes writes it). A row of zeros has s = 0 and codes 0
/// (bitsandbytes would divide by zero there).
/// </summary>
internal static class Int8Rows
{
    internal const float InverseOf127 = 7.874015718698502e-3f;

    public static (Tensor Codes, Tensor RowAbsmax) Quantize(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = weight.detach().to(ScalarType.Float32).reshape(weight.shape[0], -1);
        var absmax = w.abs().amax([1]);
        var scale = where(absmax == 0, zeros_like(absmax), absmax.reciprocal() * 127.0);
        var codes = (w * scale.unsqueeze(1)).round_().clamp_(-127, 127).to(ScalarType.Int8);
        return (codes.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    public static Tensor Dequantize(Tensor codes, Tensor rowAbsmax)
    {
        using var scope = NewDisposeScope();
        var result = (codes.to(ScalarType.Float32) * rowAbsmax.unsqueeze(1)).mul_(InverseOf127);
        return result.MoveToOuterDisposeScope();
    }
}
