using LoraGen;
using static TorchSharp.torch;

namespace FineTune;

/// <summary>
/// Applies LoRA with the rank the [LoraTarget] attributes state, or with another one chosen on the
/// command line. The attributes fix the rank at compile time (so the analyzers can check it); for
/// another rank the same targets are wrapped through the public <see cref="ILoraModule"/> members the
/// generator wrote, with alpha = 2·rank as in the attributes, and frozen as ApplyLora freezes.
/// </summary>
public static class RankChoice
{
    public static LoraReport ApplyLora(nn.Module model, int rank)
    {
        if (rank == ModelSize.Rank)
            return model.ApplyLora();
        var hosts = model.modules().OfType<ILoraModule>().ToList();
        foreach (var host in hosts)
            foreach (var target in host.LoraTargets)
            {
                var config = target.Config with { Rank = rank, Alpha = 2.0 * rank };
                host.SetLoraTarget(target.Field, LoraLayer.Wrap(host.GetLoraTarget(target.Field), config));
            }
        foreach (var parameter in model.parameters())
            parameter.requires_grad = false;
        foreach (var parameter in model.LoraParameters())
            parameter.requires_grad = true;
        return LoraReport.Of(model);
    }
}
