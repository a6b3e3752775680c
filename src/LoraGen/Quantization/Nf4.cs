using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// 4-bit NormalFloat as bitsandbytes stores it (<c>bnb.functional.quantize_4bit(quant_type="nf4")</c>): the weight
/// is read row-major as one flat vector, cut into blocks of <see cref="BlockSize"/> values, each block is scaled by
/// the reciprocal of its absolute maximum (float32) and every scaled value takes the index of the nearest entry of
/// <see cref="Code"/>; two indices share a byte, the first (even position) in the high nibble.
/// </summary>
public static class Nf4
{
    /// <summary>Weights per absmax block (bitsandbytes' default for 4-bit).</summary>
    public const int BlockSize = 64;

    /// <summary>Absmax constants per block of the double quantization (bitsandbytes uses 256).</summary>
    public const int DoubleQuantizationBlockSize = 256;

    // bitsandbytes-foundation/bitsandbytes @ 95f9af309d4d5793847169c39288dcd3fcbdf564:
    // bitsandbytes/functional.py get_4bit_type("nf4") and csrc/kernels.cu nf4_dequantization_lut (the same 16
    // float literals; get_4bit_type divides by the max |value|, 1.0, so they are unchanged).
    private static readonly float[] code =
    [
        -1.0f,
        -0.6961928009986877f,
        -0.5250730514526367f,
        -0.39491748809814453f,
        -0.28444138169288635f,
        -0.18477343022823334f,
        -0.09105003625154495f,
        0.0f,
        0.07958029955625534f,
        0.16093020141124725f,
        0.24611230194568634f,
        0.33791524171829224f,
        0.44070982933044434f,
        0.5626170039176941f,
        0.7229568362236023f,
        1.0f,
    ];

    internal static float[] CodeArray => code;

    /// <summary>The 16 NormalFloat values, index = 4-bit code, ascending.</summary>
    public static IReadOnlyList<float> Code => code;

    /// <summary>Decision boundaries: the float32 midpoints <c>(code[i] + code[i+1]) / 2</c>, as bitsandbytes'
    /// pure-torch backend builds them. A value equal to a midpoint takes the lower code (<c>torch.bucketize</c>,
    /// right=False, and the CUDA kernel's <c>x &gt; threshold</c> tree).</summary>
    internal static float[] Midpoints { get; } = Enumerable.Range(0, 15).Select(i => (code[i] + code[i + 1]) / 2f).ToArray();

    // [256, 2]: the two values a packed byte decodes to (high nibble first).
    private static readonly float[] pairTable = Enumerable.Range(0, 256)
        .SelectMany(b => new[] { code[b >> 4], code[b & 0xF] }).ToArray();

    /// <summary>The two values each packed byte decodes to, as one 64-bit word (high nibble's value in the low half,
    /// the first in memory): one load per byte in the CPU kernel.</summary>
    internal static ulong[] PairWords { get; } = Enumerable.Range(0, 256)
        .Select(b => (ulong)BitConverter.SingleToUInt32Bits(code[b >> 4]) | (ulong)BitConverter.SingleToUInt32Bits(code[b & 0xF]) << 32)
        .ToArray();

    /// <summary>Packs <paramref name="weight"/> (any shape, any float type) into NF4: (packed codes, uint8 [ceil(n/2)];
    /// absmax, float32 [ceil(n/64)]). The last block may be short; its absmax covers only its own values.</summary>
    internal static (Tensor Packed, Tensor Absmax) Quantize(Tensor weight, bool tensorOps = false)
    {
        using var scope = NewDisposeScope();
        var flat = weight.detach().reshape(-1).to(ScalarType.Float32).contiguous();
        if (flat.device_type == DeviceType.CPU && !tensorOps)
        {
            var (p, a) = Nf4Kernels.Quantize(flat);
            return (p.MoveToOuterDisposeScope(), a.MoveToOuterDisposeScope());
        }
        var (scaled, absmax, n) = ScaleBlocks(flat, BlockSize);
        using var bounds = tensor(Midpoints, device: weight.device);
        var q = bucketize(scaled, bounds, outInt32: true).view(-1, 2);
        var packed = (q.select(1, 0) * 16 + q.select(1, 1)).to(ScalarType.Byte);
        packed = packed.narrow(0, 0, (n + 1) / 2).contiguous();
        return (packed.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary>The float32 values of <paramref name="count"/> NF4 weights: <c>code[q] * absmax[block]</c>.</summary>
    internal static Tensor Dequantize(Tensor packed, Tensor absmax, long count, bool tensorOps = false)
    {
        using var scope = NewDisposeScope();
        if (packed.device_type == DeviceType.CPU && !tensorOps)
            return Nf4Kernels.Dequantize(packed.contiguous(), absmax.contiguous(), count).MoveToOuterDisposeScope();
        using var table = tensor(pairTable, device: packed.device).view(256, 2);
        var values = table.index_select(0, packed.to(ScalarType.Int32)).view(-1);
        var blocks = absmax.shape[0];
        if (values.shape[0] != blocks * BlockSize)
            values = nn.functional.pad(values, [0, blocks * BlockSize - values.shape[0]]);
        var result = values.view(blocks, BlockSize).mul_(absmax.unsqueeze(1)).view(-1);
        if (result.shape[0] != count)
            result = result.narrow(0, 0, count).contiguous();
        return result.MoveToOuterDisposeScope();
    }

    /// <summary><see cref="Dequantize"/> into <paramref name="destination"/> (contiguous float32 [count] on the CPU).</summary>
    internal static void DequantizeInto(Tensor packed, Tensor absmax, long count, Tensor destination)
    {
        using var p = packed.contiguous();
        using var a = absmax.contiguous();
        Nf4Kernels.DequantizeInto(p, a, count, destination);
    }

    /// <summary>Splits a flat float32 vector into blocks (zero-padded to whole blocks: zeros change no absmax) and
    /// scales each by the float32 reciprocal of its absmax (clamped to 1e-38 as bitsandbytes does), clamped to
    /// [-1, 1]. Returns the scaled [blocks, size], the absmax [blocks] and the true length.</summary>
    internal static (Tensor Scaled, Tensor Absmax, long Count) ScaleBlocks(Tensor flat, int blockSize)
    {
        long n = flat.shape[0];
        long blocks = (n + blockSize - 1) / blockSize;
        if (blocks * blockSize != n)
            flat = nn.functional.pad(flat, [0, blocks * blockSize - n]);
        var view = flat.view(blocks, blockSize);
        var absmax = view.abs().amax([1]);
        var scaled = (view * absmax.clamp_min(1e-38).reciprocal().unsqueeze(1)).clamp_(-1, 1);
        return (scaled, absmax, n);
    }
}
