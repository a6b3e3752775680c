using TorchSharp;
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

    // Rows quantized at a time: about 64 Ki weights (256 KiB of float32 temporaries), at least one row.
    private const long ChunkValues = 1 << 16;

    /// <summary>Codes int8 [out, in] and the row absmax float32 [out]. On the CPU a few rows at a time, so the float
    /// temporaries (|w|, w · scale) are ~256 KiB, not two copies of the weight left as holes in glibc's heap: loading
    /// straight into int8 then peaks near the codes plus the weight being read (workload (a): about 14 MB over the
    /// baseline, 35.4 MB with whole-weight temporaries).</summary>
    public static (Tensor Codes, Tensor RowAbsmax) Quantize(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = weight.detach().to(ScalarType.Float32).reshape(weight.shape[0], -1);
        long rows = w.shape[0], columns = w.shape[1];
        var codes = empty(rows, columns, ScalarType.Int8, device: w.device);
        var absmax = empty(rows, ScalarType.Float32, device: w.device);
        // On other devices in one piece: their caching allocator reuses freed blocks, and one launch beats hundreds.
        long chunkRows = w.device_type == DeviceType.CPU ? Math.Max(1, ChunkValues / Math.Max(1, columns)) : rows;
        for (long first = 0; first < rows; first += chunkRows)
        {
            using var chunk = NewDisposeScope();
            long count = Math.Min(chunkRows, rows - first);
            var part = w.narrow(0, first, count);
            var rowAbsmax = part.abs().amax([1]);
            var scale = where(rowAbsmax == 0, zeros_like(rowAbsmax), rowAbsmax.reciprocal() * 127.0);
            absmax.narrow(0, first, count).copy_(rowAbsmax);
            codes.narrow(0, first, count).copy_((part * scale.unsqueeze(1)).round_().clamp_(-127, 127));
        }
        return (codes.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    public static Tensor Dequantize(Tensor codes, Tensor rowAbsmax)
    {
        using var scope = NewDisposeScope();
        var result = (codes.to(ScalarType.Float32) * rowAbsmax.unsqueeze(1)).mul_(InverseOf127);
        return result.MoveToOuterDisposeScope();
    }
}
