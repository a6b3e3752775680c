using System.Runtime.InteropServices;
using LoraGen.Files;

namespace LoraGen.SaveLoop;

/// <summary>
/// What save number k holds, so that a reader can tell a complete save from a mixture: an adapter on four 512×512
/// layers (q, k, v, o; 0.5–1 MB, so a save takes long enough to be killed in) whose rank alternates 32/64 and
/// whose alpha changes at every save, with every lora_A value k + 0.25 and every lora_B value −(k + 0.5).
/// </summary>
public static class SaveContent
{
    public const int Width = 512;

    public static readonly string[] Layers = ["q", "k", "v", "o"];

    public static int RankOf(long k) => k % 2 == 0 ? 32 : 64;

    public static double AlphaOf(long k) => 8 * (k % 6 + 1);

    public static float AValue(long k) => k + 0.25f;

    public static float BValue(long k) => -(k + 0.5f);

    /// <summary>The adapter_config.json of save k.</summary>
    public static byte[] ConfigJson(long k) =>
        new AdapterConfig { Rank = RankOf(k), Alpha = AlphaOf(k), TargetModules = Layers }.ToJson();

    /// <summary>The tensors of save k, keyed as SaveAdapter keys them.</summary>
    public static List<SafetensorsTensor> Tensors(long k)
    {
        int rank = RankOf(k);
        var a = Bytes(rank * Width, AValue(k));
        var b = Bytes(Width * rank, BValue(k));
        return Layers.SelectMany(layer => new[]
        {
            new SafetensorsTensor($"base_model.model.{layer}.lora_A.weight", SafetensorsDType.F32, [rank, Width], () => a),
            new SafetensorsTensor($"base_model.model.{layer}.lora_B.weight", SafetensorsDType.F32, [Width, rank], () => b),
        }).OrderBy(tensor => tensor.Name, StringComparer.Ordinal).ToList();
    }

    private static ReadOnlyMemory<byte> Bytes(int count, float value)
    {
        var values = new float[count];
        Array.Fill(values, value);
        return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
    }
}
