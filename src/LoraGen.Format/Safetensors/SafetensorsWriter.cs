using System.Buffers.Binary;
using System.Text.Json;

namespace LoraGen.Files;

/// <summary>A tensor to write: its header entry, and a function that gives its raw little-endian bytes
/// when the writer reaches it (so a large file can be written one tensor at a time).</summary>
/// <param name="Name">The key.</param>
/// <param name="DType">The element type.</param>
/// <param name="Shape">The sizes, outermost first.</param>
/// <param name="Data">Gives exactly ElementCount × element size bytes.</param>
public sealed record SafetensorsTensor(string Name, SafetensorsDType DType, IReadOnlyList<long> Shape, Func<ReadOnlyMemory<byte>> Data)
{
    /// <summary>Bytes the tensor occupies: the product of the shape times the element size.</summary>
    public long ByteLength => checked(Shape.Aggregate(1L, (product, size) => product * size) * DType.ElementSize());
}

/// <summary>
/// Writes the safetensors format: the header lists the tensors in the order given, with back-to-back
/// ranges, and is padded with spaces to a multiple of 8 bytes so the data section is aligned (as the
/// reference implementation does). <see cref="WriteFile"/> replaces a file atomically.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>Writes the file to <paramref name="path"/> atomically: a temporary file in the same
    /// directory, flushed to disk, then moved over the old one. If writing fails, the old file is untouched.</summary>
    public static void WriteFile(string path, IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, stream => Write(stream, tensors, metadata));

    /// <summary>Writes the whole file to <paramref name="output"/>.</summary>
    /// <exception cref="ArgumentException">A name is used twice or is <c>__metadata__</c>, a size is negative,
    /// or a tensor's data is not the length its shape says.</exception>
    public static void Write(Stream output, IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(tensors);
        var header = Header(tensors, metadata);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        output.Write(length);
        output.Write(header);
        foreach (var tensor in tensors)
        {
            var data = tensor.Data();
            if (data.Length != tensor.ByteLength)
                throw new ArgumentException(
                    $"Tensor '{tensor.Name}' ({tensor.DType} [{string.Join(", ", tensor.Shape)}]) needs {tensor.ByteLength:N0} bytes but its data has {data.Length:N0}.",
                    nameof(tensors));
            output.Write(data.Span);
        }
    }

    private static byte[] Header(IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var tensor in tensors)
            {
                if (tensor.Name == "__metadata__" || !names.Add(tensor.Name))
                    throw new ArgumentException($"Tensor name '{tensor.Name}' is reserved or used twice.", nameof(tensors));
                if (tensor.Shape.Any(size => size < 0))
                    throw new ArgumentException($"Tensor '{tensor.Name}' has a negative size in [{string.Join(", ", tensor.Shape)}].", nameof(tensors));
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", tensor.DType.ToString());
                json.WriteStartArray("shape");
                foreach (var size in tensor.Shape)
                    json.WriteNumberValue(size);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset = checked(offset + tensor.ByteLength);
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++)
            buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
