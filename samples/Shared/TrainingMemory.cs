using static TorchSharp.torch;

namespace Samples.Shared;

/// <summary>
/// The memory a training run holds from step to step, counted from the live tensors after the first
/// step: every weight, every gradient, and AdamW's two moment tensors per trained parameter (AdamW
/// allocates exactly those, and only for parameters that have a gradient). Activations are freed with
/// each step's dispose scope and are the same whatever is trained, so they are left out; so is the
/// process's resident set, which LibTorch and the .NET runtime dominate.
/// </summary>
/// <remarks>One file compiled into samples/FineTune and samples/SpamFilter (each csproj links samples/Shared).</remarks>
internal static class TrainingMemory
{
    public static long TensorBytes(nn.Module model)
    {
        long bytes = 0;
        foreach (var parameter in model.parameters())
        {
            bytes += Bytes(parameter);
            if (parameter.grad is { } grad)
                bytes += Bytes(grad) + 2 * Bytes(parameter);
        }
        return bytes;
    }

    private static long Bytes(Tensor tensor) => tensor.NumberOfElements * tensor.ElementSize;
}
