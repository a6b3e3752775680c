using System.Diagnostics;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FineTune;

/// <summary>
/// Two memory figures for a training run. Tensor bytes are counted from the live tensors after a step:
/// every weight, every gradient, and AdamW's two moment tensors per trained parameter (AdamW allocates
/// exactly those for each parameter that has a gradient). The process peak resident set (Linux VmHWM) is
/// reset at the start of each run where the kernel allows it (/proc/self/clear_refs), so each run reports
/// its own peak; it includes LibTorch and the .NET runtime, hundreds of MB that any run pays.
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

    /// <summary>Starts a new peak, where the operating system supports it.</summary>
    public static void ResetPeak()
    {
        try
        {
            if (OperatingSystem.IsLinux())
                File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
            // Kernels before 4.0 or a locked-down /proc: the peak then covers the process so far.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public static long PeakResidentBytes()
    {
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    private static long Bytes(Tensor tensor) => tensor.NumberOfElements * tensor.ElementSize;
}
