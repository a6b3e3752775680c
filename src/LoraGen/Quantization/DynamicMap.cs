using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// bitsandbytes' signed 8-bit "dynamic" map (<c>bnb.functional.create_dynamic_map(signed=True, max_exponent_bits=7,
/// total_bits=8)</c>, bitsandbytes-foundation/bitsandbytes @ 95f9af309d4d5793847169c39288dcd3fcbdf564,
/// bitsandbytes/functional.py), the code <c>quantize_blockwise</c> uses by default and so the code of NF4's double
/// quantization. Built with the same float32 tensor operations as the Python (linspace, midpoints, scaling by
/// 10^(i-6)), then sorted: 256 ascending values in [-1, 1] with 0 and 1 included.
/// </summary>
internal static class DynamicMap
{
    private static readonly Lazy<float[]> values = new(Create);

    public static float[] Values => values.Value;

    public static float[] Midpoints { get; } = Values.Zip(Values.Skip(1), (a, b) => (a + b) / 2f).ToArray();

    private static float[] Create()
    {
        using var scope = NewDisposeScope();
        var data = new List<float>(256);
        for (var i = 0; i < 7; i++)
        {
            // signed: fraction_items = 2^(i + non_sign_bits - max_exponent_bits) + 1 = 2^i + 1
            var boundaries = linspace(0.1, 1, (1 << i) + 1, ScalarType.Float32, device: CPU);
            var means = (boundaries.narrow(0, 0, 1 << i) + boundaries.narrow(0, 1, 1 << i)) / 2.0;
            var scale = Math.Pow(10, -6 + i);   // Python's 10 ** (-(max_exponent_bits - 1) + i)
            data.AddRange(means.mul(scale).data<float>().ToArray());
            data.AddRange(means.mul(-scale).data<float>().ToArray());
        }
        // additional_items = 2^(7 - 7) - 1 = 0: nothing more. Then 0 and 1.0; 256 values, no gap to fill.
        data.Add(0f);
        data.Add(1f);
        if (data.Count != 256)
            throw new InvalidOperationException($"dynamic map has {data.Count} values, expected 256");
        data.Sort();
        return data.ToArray();
    }

    /// <summary><c>quantize_blockwise(A, code=dynamic, blocksize)</c>: per block of <paramref name="blockSize"/> the
    /// absmax, values times its float32 reciprocal, nearest code (ties to the lower). Returns (uint8 codes [n], float32
    /// absmax [blocks]).</summary>
    public static (Tensor Codes, Tensor Absmax) Quantize(Tensor flat, int blockSize)
    {
        using var scope = NewDisposeScope();
        var (scaled, absmax, n) = Nf4.ScaleBlocks(flat, blockSize);
        using var bounds = tensor(Midpoints, device: flat.device);
        var codes = bucketize(scaled, bounds, outInt32: true).view(-1).narrow(0, 0, n).to(ScalarType.Byte);
        return (codes.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary><c>dequantize_blockwise(codes, absmax) + offset</c> (NF4's double-quantized absmax): on the CPU a
    /// plain loop, <c>code[q] · absmax[block]</c> then <c>+ offset</c>, each rounded to float32 as libtorch's
    /// <c>mul_</c> and <c>add_</c> do, so the bits are those of <see cref="Dequantize"/> followed by <c>add_</c>
    /// (tested); elsewhere those operations. A new float32 tensor.</summary>
    public static Tensor DequantizeWithOffset(Tensor codes, Tensor absmax, Tensor offset, int blockSize)
    {
        if (codes.device_type != DeviceType.CPU)
        {
            using var scope = NewDisposeScope();
            return Dequantize(codes, absmax, blockSize).add_(offset).MoveToOuterDisposeScope();
        }
        using var q = codes.contiguous();
        using var a = absmax.contiguous();
        var result = empty(q.shape[0], ScalarType.Float32, device: CPU);
        var table = Values;
        var codeBytes = q.bytes;
        var scales = MemoryMarshal.Cast<byte, float>(a.bytes);
        var output = MemoryMarshal.Cast<byte, float>(result.bytes);
        float shift = offset.item<float>();
        for (var i = 0; i < codeBytes.Length; i++)
        {
            float value = table[codeBytes[i]] * scales[i / blockSize];
            output[i] = value + shift;
        }
        return result;
    }

    /// <summary><c>dequantize_blockwise</c>: <c>code[q] * absmax[block]</c> in float32.</summary>
    public static Tensor Dequantize(Tensor codes, Tensor absmax, int blockSize)
    {
        using var scope = NewDisposeScope();
        using var table = tensor(Values, device: codes.device);
        var values = table.index_select(0, codes.to(ScalarType.Int32));
        long n = values.shape[0], blocks = absmax.shape[0];
        if (n != blocks * blockSize)
            values = nn.functional.pad(values, [0, blocks * blockSize - n]);
        var result = values.view(blocks, blockSize).mul_(absmax.unsqueeze(1)).view(-1).narrow(0, 0, n).contiguous();
        return result.MoveToOuterDisposeScope();
    }
}
