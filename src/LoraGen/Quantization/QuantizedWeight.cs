using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// A 2-D float weight in one of the <see cref="QuantizationKind"/> formats: the tensors a quantized layer stores (codes,
/// absmax, and for double quantization the absmax's own scale and offset), made and read the same way for a Linear's
/// [out, in] weight and an Embedding's [num, dim] table.
/// </summary>
internal sealed record QuantizedWeight(QuantizationKind Kind, long Rows, long Columns, Tensor Codes, Tensor Absmax, Tensor? AbsmaxScale, Tensor? AbsmaxOffset)
{
    /// <summary>Quantizes <paramref name="weight"/> [rows, columns] (any float type, any device); the input is not kept.</summary>
    public static QuantizedWeight Of(Tensor weight, QuantizationKind kind)
    {
        long rows = weight.shape[0], columns = weight.shape[1];
        using var _ = no_grad();
        switch (kind)
        {
            case QuantizationKind.Int8:
            {
                var (codes, rowAbsmax) = Int8Rows.Quantize(weight);
                return new QuantizedWeight(kind, rows, columns, codes, rowAbsmax, null, null);
            }
            case QuantizationKind.Nf4:
            {
                var (packed, absmax) = Nf4.Quantize(weight);
                return new QuantizedWeight(kind, rows, columns, packed, absmax, null, null);
            }
            case QuantizationKind.Nf4DoubleQuantized:
            {
                var (packed, absmax) = Nf4.Quantize(weight);
                using (absmax)
                {
                    // bitsandbytes quantize_4bit(compress_statistics=True): offset = absmax.mean();
                    // quantize_blockwise(absmax - offset, blocksize=256) with the dynamic map.
                    var offset = absmax.mean();
                    using var centered = absmax - offset;
                    var (absmaxCodes, absmaxScale) = DynamicMap.Quantize(centered, Nf4.DoubleQuantizationBlockSize);
                    return new QuantizedWeight(kind, rows, columns, packed, absmaxCodes, absmaxScale, offset);
                }
            }
            case QuantizationKind.None:
                throw new ArgumentException("QuantizationKind.None stores no quantized weight: keep the float layer, or choose Nf4, Nf4DoubleQuantized or Int8", nameof(kind));
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown quantization kind");
        }
    }

    /// <summary>The per-block NF4 absmax in float32 (for double quantization <c>dynamic[q]·scale + offset</c>); for
    /// Int8 the per-row absmax. A new tensor.</summary>
    public Tensor Scales()
    {
        using var _ = no_grad();
        return Kind == QuantizationKind.Nf4DoubleQuantized
            ? DynamicMap.DequantizeWithOffset(Absmax, AbsmaxScale!, AbsmaxOffset!, Nf4.DoubleQuantizationBlockSize)
            : Absmax.clone();
    }

    /// <summary>The float32 weight [rows, columns] the codes stand for (a new tensor).</summary>
    public Tensor Dequantize()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var weight = Kind switch
        {
            QuantizationKind.Int8 => Int8Rows.Dequantize(Codes, Absmax),
            QuantizationKind.Nf4 => Nf4.Dequantize(Codes, Absmax, Rows * Columns),
            _ => Nf4.Dequantize(Codes, Scales(), Rows * Columns),
        };
        return weight.view(Rows, Columns).MoveToOuterDisposeScope();
    }

    /// <summary>Bytes of the codes and scales.</summary>
    public long Bytes => Size(Codes) + Size(Absmax) + Size(AbsmaxScale) + Size(AbsmaxOffset);

    private static long Size(Tensor? t) => t is null ? 0 : t.numel() * t.element_size();
}
