namespace LoraGen.Files;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The key.</param>
/// <param name="DType">The element type.</param>
/// <param name="Shape">The sizes, outermost first; empty for a scalar.</param>
/// <param name="Begin">First byte, relative to the start of the data section.</param>
/// <param name="End">One past the last byte, relative to the start of the data section.</param>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, IReadOnlyList<long> Shape, long Begin, long End)
{
    /// <summary>Bytes the tensor occupies.</summary>
    public long ByteLength => End - Begin;

    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (product, size) => product * size);

    /// <summary>The shape as PyTorch prints it, e.g. <c>[8, 512]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
