using static TorchSharp.torch;

namespace SpamFilter.Runs;

/// <summary>
/// The memory a run holds from step to step, counted from live tensors after the first step: every weight, every
/// gradient, and AdamW's two moments per trained parameter. Activations are freed with each step's dispose scope.
/// </summary>
public static class TrainingMemory
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
