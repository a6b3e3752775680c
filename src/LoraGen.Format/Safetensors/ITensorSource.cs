namespace LoraGen.Files;

/// <summary>Tensors by key with their header entries, read one at a time: one safetensors file, or a
/// checkpoint of several.</summary>
internal interface ITensorSource
{
    /// <summary>Every tensor's header entry.</summary>
    IEnumerable<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The entry for <paramref name="name"/>, or null.</summary>
    SafetensorsTensorInfo? Find(string name);

    /// <summary>Reads a tensor's raw little-endian bytes into <paramref name="destination"/>, its exact length.</summary>
    void ReadInto(SafetensorsTensorInfo tensor, Span<byte> destination);
}
