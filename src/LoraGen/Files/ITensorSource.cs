namespace LoraGen.Files;

/// <summary>Tensors by key with their header entries, read one at a time: one safetensors file, or a
/// checkpoint of several.</summary>
internal interface ITensorSource
{
    /// <summary>Every tensor's header entry.</summary>
    IEnumerable<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The entry for <paramref name="name"/>, or null.</summary>
    SafetensorsTensorInfo? Find(string name);

    /// <summary>The raw little-endian bytes of a tensor.</summary>
    byte[] ReadBytes(SafetensorsTensorInfo tensor);
}
