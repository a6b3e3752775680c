using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Support;

/// <summary>
/// A block whose adapter options are chosen at run time, to test the run-time checks with options the
/// analyzers would reject at compile time. The generator writes ILoraModule from attributes, so this
/// one implementation is written by hand, the way the generator would.
/// </summary>
public sealed class ConfigurableBlock : nn.Module<Tensor, Tensor>, ILoraModule
{
    private nn.Module<Tensor, Tensor> up;
    private nn.Module<Tensor, Tensor> down;
    private readonly nn.Module<Tensor, Tensor> norm;

    public ConfigurableBlock(long width, long hidden, LoraConfig? upConfig = null) : base(nameof(ConfigurableBlock))
    {
        up = nn.Linear(width, hidden);
        down = nn.Linear(hidden, width);
        norm = nn.LayerNorm(width);
        LoraTargets = [new("up", upConfig ?? new LoraConfig { Rank = 4, Alpha = 8 }), new("down", new LoraConfig { Rank = 4, Alpha = 8 })];
        RegisterComponents();
    }

    public IReadOnlyList<LoraTargetInfo> LoraTargets { get; }

    public IReadOnlyList<string> TrainableFields { get; } = ["norm"];

    public nn.Module<Tensor, Tensor> GetLoraTarget(string field) => field switch
    {
        "up" => up,
        "down" => down,
        _ => throw new ArgumentException($"no LoRA target '{field}'", nameof(field)),
    };

    public void SetLoraTarget(string field, nn.Module<Tensor, Tensor> layer)
    {
        switch (field)
        {
            case "up": up = layer; break;
            case "down": down = layer; break;
            default: throw new ArgumentException($"no LoRA target '{field}'", nameof(field));
        }
        _internal_submodules[field] = layer;
    }

    public nn.Module GetTrainableField(string field) =>
        field == "norm" ? norm : throw new ArgumentException($"no trainable field '{field}'", nameof(field));

    public override Tensor forward(Tensor x) => x + down.call(nn.functional.gelu(up.call(norm.call(x))));
}
