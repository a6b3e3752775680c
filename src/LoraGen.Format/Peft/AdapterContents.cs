namespace LoraGen.Files;

/// <summary>What <see cref="AdapterConsistency.Examine"/> found in an adapter's weights file.</summary>
/// <param name="Layers">The adapted layers whose tensors agree with the config, sorted by path.</param>
/// <param name="SavedTensors">The other tensors (PEFT's <c>modules_to_save</c>): the key without the prefix
/// (e.g. <c>norm.weight</c>), and the tensor.</param>
/// <param name="Problems">Every disagreement, one sentence each naming the path, tensors and numbers; empty
/// when the file is consistent.</param>
internal sealed record AdapterContents(
    IReadOnlyList<AdapterLayerTensors> Layers,
    IReadOnlyList<(string Key, SafetensorsTensorInfo Tensor)> SavedTensors,
    IReadOnlyList<string> Problems);
