using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace LoraGen.Files;

/// <summary>Moves tensors between TorchSharp and safetensors bytes (little-endian, as the format requires).</summary>
internal static class TensorBytes
{
    static TensorBytes()
    {
        // safetensors data is little-endian; TorchSharp's bytes are in the machine's order.
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("LoraGen reads and writes safetensors on little-endian machines only.");
    }

    /// <summary>The safetensors dtype for a TorchSharp dtype.</summary>
    /// <exception cref="NotSupportedException">No safetensors dtype LoraGen writes matches.</exception>
    public static SafetensorsDType ToSafetensors(ScalarType type, string key) => type switch
    {
        ScalarType.Float64 => SafetensorsDType.F64,
        ScalarType.Float32 => SafetensorsDType.F32,
        ScalarType.Float16 => SafetensorsDType.F16,
        ScalarType.BFloat16 => SafetensorsDType.BF16,
        ScalarType.Int64 => SafetensorsDType.I64,
        ScalarType.Int32 => SafetensorsDType.I32,
        ScalarType.Int16 => SafetensorsDType.I16,
        ScalarType.Int8 => SafetensorsDType.I8,
        ScalarType.Byte => SafetensorsDType.U8,
        ScalarType.Bool => SafetensorsDType.BOOL,
        _ => throw new NotSupportedException($"'{key}' is {type}, which LoraGen cannot store in safetensors; " +
            "supported: float64, float32, float16, bfloat16, int64, int32, int16, int8, uint8, bool."),
    };

    /// <summary>The TorchSharp dtype for a safetensors dtype.</summary>
    public static ScalarType ToTorch(SafetensorsDType type) => type switch
    {
        SafetensorsDType.F64 => ScalarType.Float64,
        SafetensorsDType.F32 => ScalarType.Float32,
        SafetensorsDType.F16 => ScalarType.Float16,
        SafetensorsDType.BF16 => ScalarType.BFloat16,
        SafetensorsDType.I64 => ScalarType.Int64,
        SafetensorsDType.I32 => ScalarType.Int32,
        SafetensorsDType.I16 => ScalarType.Int16,
        SafetensorsDType.I8 => ScalarType.Int8,
        SafetensorsDType.U8 => ScalarType.Byte,
        _ => ScalarType.Bool,
    };

    /// <summary>Whether a TorchSharp dtype holds floating-point numbers.</summary>
    public static bool IsFloatingPoint(ScalarType type) =>
        type is ScalarType.Float64 or ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16;

    /// <summary>A tensor's contents as safetensors data: contiguous, on the CPU, little-endian.</summary>
    public static SafetensorsTensor ToEntry(string key, Tensor tensor)
    {
        var dtype = ToSafetensors(tensor.dtype, key);
        using var scope = NewDisposeScope();
        byte[] data = tensor.detach().cpu().contiguous().bytes.ToArray();
        return new SafetensorsTensor(key, dtype, tensor.shape, () => data);
    }

    /// <summary>A tensor's entry whose bytes are copied out only when the writer asks for them, so a file of many
    /// tensors is written with one tensor's copy in memory at a time.</summary>
    public static SafetensorsTensor ToLazyEntry(string key, Tensor tensor)
    {
        var dtype = ToSafetensors(tensor.dtype, key);
        return new SafetensorsTensor(key, dtype, tensor.shape, () =>
        {
            using var scope = NewDisposeScope();
            return tensor.detach().cpu().contiguous().bytes.ToArray();
        });
    }

    /// <summary>A new CPU tensor read straight from <paramref name="file"/> into its own memory (no managed copy);
    /// the caller disposes it.</summary>
    public static Tensor Read(ITensorSource file, SafetensorsTensorInfo info) =>
        ReadInto(file, info, empty(info.Shape.ToArray(), ToTorch(info.DType), device: CPU));

    /// <summary>Reads <paramref name="info"/> into <paramref name="tensor"/> (contiguous, on the CPU, of its dtype and
    /// size) and returns it; disposes it if the read fails.</summary>
    public static Tensor ReadInto(ITensorSource file, SafetensorsTensorInfo info, Tensor tensor)
    {
        try
        {
            file.ReadInto(info, tensor.bytes);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>A new CPU tensor holding <paramref name="data"/>; the caller disposes it.</summary>
    public static Tensor FromBytes(byte[] data, SafetensorsDType dtype, IReadOnlyList<long> shape)
    {
        var tensor = empty(shape.ToArray(), ToTorch(dtype), device: CPU); // not the default device: the bytes are copied in on the CPU
        data.AsSpan().CopyTo(tensor.bytes);
        return tensor;
    }
}
