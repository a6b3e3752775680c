using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// NF4 packing and unpacking on CPU tensors as plain C# loops over their memory, in parallel chunks of whole
/// blocks (libtorch's bucketize and a [256, 2] index_select ran at ~10⁷ values/s here; these are memory-bound).
/// The arithmetic is the same float32 operations as bitsandbytes' (x · (1/absmax), clamp, count of midpoints
/// below, code · absmax), so results are bit for bit those of <see cref="Nf4"/>'s tensor path.
/// </summary>
internal static class Nf4Kernels
{
    private const int ChunkBlocks = 1024;   // 65,536 values per task

    private static int Threads => Math.Max(1, get_num_threads());

    /// <summary>flat: contiguous float32 [n] on the CPU. Returns (packed uint8 [(n+1)/2], absmax float32 [ceil(n/64)]).</summary>
    public static (Tensor Packed, Tensor Absmax) Quantize(Tensor flat)
    {
        long n = flat.shape[0];
        long blocks = (n + Nf4.BlockSize - 1) / Nf4.BlockSize;
        var packed = empty((n + 1) / 2, ScalarType.Byte, device: CPU);
        var absmax = empty(blocks, ScalarType.Float32, device: CPU);
        var mids = Nf4.Midpoints;
        ForEachChunk(blocks, n, (firstBlock, blockCount, start, count) =>
        {
            using var w = flat.narrow(0, start, count);
            using var p = packed.narrow(0, start / 2, (count + 1) / 2);
            using var a = absmax.narrow(0, firstBlock, blockCount);
            var values = MemoryMarshal.Cast<byte, float>(w.bytes);
            var bytes = p.bytes;
            var scales = MemoryMarshal.Cast<byte, float>(a.bytes);
            for (var b = 0; b < blockCount; b++)
            {
                int from = b * Nf4.BlockSize, to = (int)Math.Min(from + Nf4.BlockSize, count);
                var max = 0f;
                for (var i = from; i < to; i++)
                    max = Math.Max(max, Math.Abs(values[i]));
                scales[b] = max;
                var reciprocal = 1f / Math.Max(max, 1e-38f);
                for (var i = from; i < to; i += 2)
                {
                    var high = Code(values[i] * reciprocal, mids);
                    var low = i + 1 < to ? Code(values[i + 1] * reciprocal, mids) : 7;   // padding: the code of 0.0
                    bytes[i >> 1] = (byte)(high << 4 | low);
                }
            }
        });
        return (packed, absmax);
    }

    // The blocks in chunks of ChunkBlocks, in parallel: (first block, blocks in the chunk, first weight, weights in it).
    private static void ForEachChunk(long blocks, long n, Action<long, long, long, long> body)
    {
        long chunks = (blocks + ChunkBlocks - 1) / ChunkBlocks;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Threads }, chunk =>
        {
            long firstBlock = chunk * ChunkBlocks;
            long blockCount = Math.Min(ChunkBlocks, blocks - firstBlock);
            long start = firstBlock * Nf4.BlockSize;
            body(firstBlock, blockCount, start, Math.Min(blockCount * Nf4.BlockSize, n - start));
        });
    }

    /// <summary>Index of the nearest code: how many midpoints lie strictly below the clamped value.</summary>
    private static int Code(float scaled, float[] mids)
    {
        var s = Math.Clamp(scaled, -1f, 1f);
        var q = s > mids[7] ? 8 : 0;
        if (s > mids[q + 3]) q += 4;
        if (s > mids[q + 1]) q += 2;
        if (s > mids[q]) q += 1;
        return q;
    }

    /// <summary>packed uint8 [(n+1)/2], absmax float32 [ceil(n/64)] on the CPU → float32 [n].</summary>
    public static Tensor Dequantize(Tensor packed, Tensor absmax, long n) =>
        DequantizeInto(packed, absmax, n, empty(n, ScalarType.Float32, device: CPU));

    /// <summary>As <see cref="Dequantize"/>, into <paramref name="result"/> (contiguous float32 [n] on the CPU), which
    /// is returned.</summary>
    public static Tensor DequantizeInto(Tensor packed, Tensor absmax, long n, Tensor result)
    {
        var code = Nf4.CodeArray;
        var pairs = Nf4.PairWords;
        ForEachChunk(absmax.shape[0], n, (firstBlock, blockCount, start, count) =>
        {
            using var o = result.narrow(0, start, count);
            using var p = packed.narrow(0, start / 2, (count + 1) / 2);
            using var a = absmax.narrow(0, firstBlock, blockCount);
            var output = MemoryMarshal.Cast<byte, float>(o.bytes);
            var bytes = p.bytes;
            var scales = MemoryMarshal.Cast<byte, float>(a.bytes);
            var outputWords = MemoryMarshal.Cast<float, ulong>(output);
            for (var b = 0; b < blockCount; b++)
            {
                int from = b * Nf4.BlockSize, to = (int)Math.Min(from + Nf4.BlockSize, count);
                var scale = scales[b];
                int i = from;
                if (Vector256.IsHardwareAccelerated && to - from == Nf4.BlockSize)
                {
                    // A whole block: 4 bytes → 8 values per step, each byte's two values one 64-bit load, one
                    // multiply by the block's scale (the same float32 products as the scalar loop).
                    var factor = Vector256.Create(scale);
                    for (; i < to; i += 8)
                    {
                        int at = i >> 1;
                        var values = Vector256.Create(pairs[bytes[at]], pairs[bytes[at + 1]], pairs[bytes[at + 2]], pairs[bytes[at + 3]]).AsSingle();
                        (values * factor).AsUInt64().CopyTo(outputWords.Slice(at, 4));
                    }
                    continue;
                }
                for (; i < to; i += 2)
                {
                    var q = bytes[i >> 1];
                    output[i] = code[q >> 4] * scale;
                    if (i + 1 < to)
                        output[i + 1] = code[q & 0xF] * scale;
                }
            }
        });
        return result;
    }
}
