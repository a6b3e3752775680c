using LoraGen;
using static TorchSharp.torch;

namespace FineTune;

/// <summary>
/// Applies LoRA with the rank the [LoraTarget] attribute states (checked by the analyzers at compile
/// time), or with another one chosen on the command line, on the same target and with alpha = 2·rank as
/// in the attribute. ApplyLora checks the chosen rank at run time.
/// </summary>
public static class RankChoice
{
    public static LoraReport ApplyLora(nn.Module model, int rank) => model.ApplyLora(Options(rank));

    /// <summary>QLoRA: the same adapter, with every frozen Linear of the base stored as <paramref name="quantize"/>
    /// (<c>QuantizeFrozenLinears</c>). The adapter itself is on the token Embedding, which stays float.</summary>
    public static LoraReport ApplyLora(nn.Module model, int rank, QuantizationKind quantize) =>
        model.ApplyLora((Options(rank) ?? new LoraOptions()) with { Quantize = quantize, QuantizeFrozenLinears = true });

    /// <summary>One more adapter, named <paramref name="adapter"/>, on the same targets with the same options
    /// (inactive until <see cref="NamedAdapterExtensions.SetActiveAdapters"/> chooses it).</summary>
    public static LoraReport AddAdapter(nn.Module model, string adapter, int rank) => model.AddAdapter(adapter, Options(rank));

    private static LoraOptions? Options(int rank) =>
        rank == ModelSize.Rank ? null : new LoraOptions { Reconfigure = (_, config) => config with { Rank = rank, Alpha = 2.0 * rank } };
}
