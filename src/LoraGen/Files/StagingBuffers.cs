using static TorchSharp.torch;

namespace LoraGen.Files;

/// <summary>
/// CPU buffers a load reads its tensors into one after another, one per dtype, each grown to the largest tensor of
/// that dtype read so far. For a load that converts or copies each tensor and drops it: a fresh tensor per weight
/// would leave a tensor-sized hole in glibc's heap each time, and freed heap memory between live blocks stays
/// resident (measured on workload (a): loading straight into NF4 peaked 17–21 MB over the process's baseline with a
/// tensor per weight, 8 MB with these buffers, for 2.4 MB of codes).
/// </summary>
internal sealed class StagingBuffers : IDisposable
{
    private readonly Dictionary<ScalarType, Tensor> buffers = [];

    /// <summary><paramref name="info"/>'s value as a view of this dtype's buffer, valid until the next read of that
    /// dtype; the caller disposes the view.</summary>
    public Tensor Read(ITensorSource file, SafetensorsTensorInfo info)
    {
        var dtype = TensorBytes.ToTorch(info.DType);
        long count = info.Shape.Aggregate(1L, (product, size) => product * size);
        if (!buffers.TryGetValue(dtype, out var buffer) || buffer.numel() < count)
        {
            buffer?.Dispose();
            buffers.Remove(dtype);
            buffer = empty(count, dtype, device: CPU);
            buffers[dtype] = buffer;
        }
        using var flat = buffer.narrow(0, 0, count);
        return TensorBytes.ReadInto(file, info, flat.view(info.Shape.ToArray()));
    }

    public void Dispose()
    {
        foreach (var buffer in buffers.Values)
            buffer.Dispose();
        buffers.Clear();
    }
}
