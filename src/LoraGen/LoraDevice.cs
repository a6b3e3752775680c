using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Turns a device choice as a person types it (<c>--device auto|cpu|cuda|cuda:N</c>) into a TorchSharp
/// device, with an error that says what to do when CUDA is asked for and not there.
/// </summary>
public static class LoraDevice
{
    /// <summary>The choices <see cref="Select"/> accepts, for help texts.</summary>
    public const string Choices = "auto, cpu, cuda or cuda:N";

    /// <summary>
    /// <c>auto</c>: CUDA when <c>torch.cuda.is_available()</c>, else the CPU. <c>cpu</c>: the CPU.
    /// <c>cuda</c> / <c>cuda:N</c>: that GPU, or an <see cref="InvalidOperationException"/> when CUDA is
    /// not available to this process.
    /// </summary>
    /// <exception cref="ArgumentException">Not one of <see cref="Choices"/>.</exception>
    public static Device Select(string choice)
    {
        if (!IsChoice(choice))
            throw new ArgumentException($"'{choice}' is not a device: use {Choices}.", nameof(choice));
        var text = Normalize(choice);
        if (text == "auto")
            return cuda.is_available() ? CUDA : CPU;
        if (text == "cpu")
            return CPU;
        if (!cuda.is_available())
            throw new InvalidOperationException(
                $"Device '{choice}' was asked for, but CUDA is not available to this process: either it loaded " +
                "TorchSharp's CPU backend (the TorchSharp-cpu package, this repository's default), or no NVIDIA GPU " +
                "and driver were found. Reference TorchSharp-cuda-linux or TorchSharp-cuda-windows instead " +
                "(docs/gpu.md), or choose --device auto or cpu.");
        int count = cuda.device_count();
        if (text != "cuda" && CudaIndex(text) >= count)
            throw new InvalidOperationException($"Device '{choice}' was asked for, but this machine has {count} CUDA device(s), numbered from 0.");
        return new Device(text);
    }

    /// <summary>Whether <paramref name="choice"/> is written as one of <see cref="Choices"/>; says nothing about
    /// whether that device is there (it does not touch TorchSharp), so command lines can be checked early.</summary>
    public static bool IsChoice(string? choice)
    {
        if (choice is null)
            return false;
        var text = Normalize(choice);
        return text is "auto" or "cpu" or "cuda" || CudaIndex(text) >= 0;
    }

    private static string Normalize(string choice) => choice.Trim().ToLowerInvariant();

    /// <summary>N for "cuda:N", else -1.</summary>
    private static int CudaIndex(string text) =>
        text.StartsWith("cuda:", StringComparison.Ordinal)
        && int.TryParse(text.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index)
            ? index
            : -1;
}
