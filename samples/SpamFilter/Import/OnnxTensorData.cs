using System.Buffers.Binary;
using Onnx;

namespace SpamFilter.Import;

/// <summary>The values of ONNX initializers as little-endian bytes, the layout safetensors stores.</summary>
internal static class OnnxTensorData
{
    /// <summary>The float32 tensor's bytes: its raw_data as is (ONNX stores it little-endian), or float_data encoded.</summary>
    /// <exception cref="ModelImportException">Not float32, stored in an external file, or not as many values as its shape says.</exception>
    public static ReadOnlyMemory<byte> Float32Bytes(TensorProto tensor)
    {
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float)
            throw new ModelImportException($"Initializer '{tensor.Name}' is {(TensorProto.Types.DataType)tensor.DataType}, not float32.");
        long count = ElementCount(tensor);
        ReadOnlyMemory<byte> bytes;
        if (tensor.RawData.Length > 0)
            bytes = tensor.RawData.Memory;
        else
        {
            var encoded = new byte[tensor.FloatData.Count * sizeof(float)];
            for (int i = 0; i < tensor.FloatData.Count; i++)
                BinaryPrimitives.WriteSingleLittleEndian(encoded.AsSpan(i * sizeof(float)), tensor.FloatData[i]);
            bytes = encoded;
        }
        if (bytes.Length != count * sizeof(float))
            throw new ModelImportException($"Initializer '{tensor.Name}' [{string.Join(", ", tensor.Dims)}] holds {bytes.Length:N0} bytes, not {count * sizeof(float):N0}.");
        return bytes;
    }

    /// <summary>The int64 tensor's values.</summary>
    public static long[] Int64Values(TensorProto tensor)
    {
        if (tensor.DataType != (int)TensorProto.Types.DataType.Int64)
            throw new ModelImportException($"Initializer '{tensor.Name}' is {(TensorProto.Types.DataType)tensor.DataType}, not int64.");
        long count = ElementCount(tensor);
        long[] values = tensor.RawData.Length > 0
            ? Enumerable.Range(0, tensor.RawData.Length / sizeof(long))
                .Select(i => BinaryPrimitives.ReadInt64LittleEndian(tensor.RawData.Span[(i * sizeof(long))..])).ToArray()
            : [.. tensor.Int64Data];
        if (values.Length != count || tensor.RawData.Length % sizeof(long) != 0)
            throw new ModelImportException($"Initializer '{tensor.Name}' [{string.Join(", ", tensor.Dims)}] does not hold {count:N0} int64 values.");
        return values;
    }

    /// <summary>The [columns, rows] transpose of a row-major [rows, columns] matrix of 4-byte elements.</summary>
    public static byte[] Transpose4(ReadOnlySpan<byte> matrix, int rows, int columns)
    {
        var result = new byte[matrix.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                matrix.Slice((r * columns + c) * 4, 4).CopyTo(result.AsSpan((c * rows + r) * 4, 4));
        return result;
    }

    private static long ElementCount(TensorProto tensor)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
            throw new ModelImportException($"Initializer '{tensor.Name}' is stored in an external file, which the package does not ship.");
        return tensor.Dims.Aggregate(1L, (product, size) => checked(product * size));
    }
}
