using System.Buffers.Binary;

namespace LoraGen.Files;

/// <summary>Decodes and encodes little-endian floating-point safetensors data without TorchSharp, so an
/// offline merge needs no native library.</summary>
internal static class FloatCodec
{
    /// <summary>The values as float32 (F32, F16, BF16) — exact, every such value is a float32.</summary>
    public static float[] ToSingles(ReadOnlySpan<byte> data, SafetensorsDType dtype)
    {
        int size = dtype.ElementSize();
        var values = new float[data.Length / size];
        for (int i = 0; i < values.Length; i++)
        {
            var bytes = data.Slice(i * size, size);
            values[i] = dtype switch
            {
                SafetensorsDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(bytes),
                SafetensorsDType.F16 => (float)BinaryPrimitives.ReadHalfLittleEndian(bytes),
                SafetensorsDType.BF16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes) << 16),
                SafetensorsDType.F64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes),
                _ => throw new ArgumentException($"{dtype} is not a floating-point type.", nameof(dtype)),
            };
        }
        return values;
    }

    /// <summary>The values as float64 (any floating-point type).</summary>
    public static double[] ToDoubles(ReadOnlySpan<byte> data, SafetensorsDType dtype)
    {
        if (dtype != SafetensorsDType.F64)
            return Array.ConvertAll(ToSingles(data, dtype), value => (double)value);
        var values = new double[data.Length / 8];
        for (int i = 0; i < values.Length; i++)
            values[i] = BinaryPrimitives.ReadDoubleLittleEndian(data.Slice(i * 8, 8));
        return values;
    }

    /// <summary>Encodes float32 values in <paramref name="dtype"/>, rounding to nearest even.</summary>
    public static byte[] FromSingles(ReadOnlySpan<float> values, SafetensorsDType dtype)
    {
        int size = dtype.ElementSize();
        var data = new byte[values.Length * size];
        for (int i = 0; i < values.Length; i++)
        {
            var bytes = data.AsSpan(i * size, size);
            switch (dtype)
            {
                case SafetensorsDType.F32: BinaryPrimitives.WriteSingleLittleEndian(bytes, values[i]); break;
                case SafetensorsDType.F16: BinaryPrimitives.WriteHalfLittleEndian(bytes, (Half)values[i]); break;
                case SafetensorsDType.BF16: BinaryPrimitives.WriteUInt16LittleEndian(bytes, ToBFloat16(values[i])); break;
                case SafetensorsDType.F64: BinaryPrimitives.WriteDoubleLittleEndian(bytes, values[i]); break;
                default: throw new ArgumentException($"{dtype} is not a floating-point type.", nameof(dtype));
            }
        }
        return data;
    }

    /// <summary>Encodes float64 values as F64.</summary>
    public static byte[] FromDoubles(ReadOnlySpan<double> values)
    {
        var data = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(i * 8, 8), values[i]);
        return data;
    }

    /// <summary>bfloat16 bits of a float32, rounded to nearest even (as PyTorch rounds); NaN stays NaN.</summary>
    public static ushort ToBFloat16(float value)
    {
        if (float.IsNaN(value))
            return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
