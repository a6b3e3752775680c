using System.Buffers.Binary;
using static TorchSharp.torch;

namespace LoraGen.Files;

/// <summary>
/// The state of TorchSharp's default CPU generator (the one dropout, <c>randn</c>, <c>randperm</c> and the
/// initializers draw from): <c>torch.Generator.Default.get_state()</c> / <c>set_state()</c>, PyTorch's
/// <c>torch.get_rng_state()</c> / <c>set_rng_state()</c>. LibTorch 2.x returns its <c>CPUGeneratorImplState</c>
/// as 5,056 bytes: the Mersenne Twister (initial seed u64 at 0, <c>left</c> i32 at 8, <c>seeded</c> i32 at 12,
/// <c>next</c> u64 at 16, 624 × u64 words at 24), the cached normal samples, and a bool at 5,052.
/// </summary>
/// <remarks>
/// LibTorch refuses a state of another size or an invalid twister with a C++ exception that TorchSharp's
/// <c>set_state</c> does not catch: it terminates the process. So a state from a file is checked here first,
/// with LibTorch's own rules (<c>mt19937::is_valid</c>).
/// </remarks>
internal static class CpuGeneratorState
{
    /// <summary>The layout checked by <see cref="Problem"/>: <c>sizeof(CPUGeneratorImplState)</c> in LibTorch 2.x.</summary>
    public const int KnownLength = 5056;

    private const int MersenneStateWords = 624;

    /// <summary>The default CPU generator's state now.</summary>
    public static byte[] Capture()
    {
        using var generator = Generator.Default;
        using var state = generator.get_state();
        return state.bytes.ToArray();
    }

    /// <summary>What would make LibTorch refuse <paramref name="state"/> (and end the process), or null.</summary>
    public static string? Problem(byte[] state)
    {
        if (state.Length != KnownLength)
            return $"the CPU generator state is {state.Length:N0} bytes; LibTorch 2.x's is {KnownLength:N0}";
        int left = BinaryPrimitives.ReadInt32LittleEndian(state.AsSpan(8));
        int seeded = BinaryPrimitives.ReadInt32LittleEndian(state.AsSpan(12));
        uint next = (uint)BinaryPrimitives.ReadUInt64LittleEndian(state.AsSpan(16));
        if (seeded == 0 || left is < 1 or > MersenneStateWords || next > MersenneStateWords)
            return $"the CPU generator state is not a valid Mersenne Twister (seeded {seeded}, left {left}, next {next})";
        if (state[5052] > 1)
            return $"the CPU generator state's cached-sample flag is {state[5052]}, not 0 or 1";
        return null;
    }

    /// <summary>Makes <paramref name="state"/> the default CPU generator's state. Check it with <see cref="Problem"/> first.</summary>
    public static void Restore(byte[] state)
    {
        using var tensor = TensorBytes.FromBytes(state, SafetensorsDType.U8, [state.Length]);
        using var generator = Generator.Default;
        generator.set_state(tensor);
    }
}
