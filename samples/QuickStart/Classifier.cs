using LoraGen;
using TorchSharp;
using static TorchSharp.torch;

namespace QuickStart;

/// <summary>
/// A small classifier: two hidden Linear layers and an output layer. [LoraTarget] puts rank-4
/// adapters on the two hidden layers; everything else stays frozen.
/// </summary>
/// <remarks>
/// The ILoraModule members below are what the LoraGen source generator writes for a [LoraTarget]
/// class; until the generator lands they are written out by hand.
/// </remarks>
[LoraTarget(Rank = 4, Alpha = 8, Targets = ["hidden1", "hidden2"])]
public sealed class Classifier : nn.Module<Tensor, Tensor>, ILoraModule
{
    private static readonly LoraConfig Adapter = new() { Rank = 4, Alpha = 8 };

    private nn.Module<Tensor, Tensor> hidden1;
    private nn.Module<Tensor, Tensor> hidden2;
    private readonly nn.Module<Tensor, Tensor> output;

    public Classifier(int features, int width, int classes) : base(nameof(Classifier))
    {
        hidden1 = nn.Linear(features, width);
        hidden2 = nn.Linear(width, width);
        output = nn.Linear(width, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.relu(hidden1.call(x));
        h = nn.functional.relu(hidden2.call(h));
        return output.call(h).MoveToOuterDisposeScope();
    }

    public IReadOnlyList<LoraTargetInfo> LoraTargets { get; } = [new("hidden1", Adapter), new("hidden2", Adapter)];

    public IReadOnlyList<string> TrainableFields { get; } = [];

    public nn.Module<Tensor, Tensor> GetLoraTarget(string field) => field switch
    {
        "hidden1" => hidden1,
        "hidden2" => hidden2,
        _ => throw new ArgumentException($"no LoRA target '{field}'", nameof(field)),
    };

    public void SetLoraTarget(string field, nn.Module<Tensor, Tensor> layer)
    {
        switch (field)
        {
            case "hidden1": hidden1 = layer; break;
            case "hidden2": hidden2 = layer; break;
            default: throw new ArgumentException($"no LoRA target '{field}'", nameof(field));
        }
        _internal_submodules[field] = layer;
    }

    public nn.Module GetTrainableField(string field) =>
        throw new ArgumentException($"no trainable field '{field}'", nameof(field));
}
