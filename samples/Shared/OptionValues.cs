using System.Globalization;
using LoraGen;

namespace Samples.Shared;

/// <summary>The option values both samples' command lines check the same way; each throws
/// <see cref="ArgumentException"/> with a message meant for the user.</summary>
/// <remarks>One file compiled into samples/FineTune and samples/SpamFilter (each csproj links samples/Shared).</remarks>
internal static class OptionValues
{
    /// <summary>The <c>--device</c> value if it is one of <see cref="LoraDevice.Choices"/>.</summary>
    public static string Device(string text) => LoraDevice.IsChoice(text)
        ? text
        : throw new ArgumentException($"--device must be {LoraDevice.Choices}, not '{text}'");

    /// <summary>The whole number <paramref name="text"/> if it is at least <paramref name="minimum"/>.</summary>
    public static int WholeNumber(string name, string text, int minimum) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum
            ? value
            : throw new ArgumentException($"{name} must be a whole number of at least {minimum}, not '{text}'");

    /// <summary>The <c>--quantize</c> value: <c>nf4</c> or <c>int8</c> (bitsandbytes' formats, see docs/qlora.md).</summary>
    public static QuantizationKind Quantization(string text) => text.ToLowerInvariant() switch
    {
        "nf4" => QuantizationKind.Nf4,
        "int8" => QuantizationKind.Int8,
        _ => throw new ArgumentException($"--quantize must be nf4 or int8, not '{text}'"),
    };
}
