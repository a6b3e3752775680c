using LoraGen;
using TorchSharp;
using static TorchSharp.torch;

namespace QuickStart;

/// <summary>
/// A small classifier: two hidden Linear layers and an output layer. [LoraTarget] puts rank-4
/// adapters on the two hidden layers; everything else stays frozen. The LoraGen source generator
/// implements ILoraModule for this partial class at compile time.
/// </summary>
[LoraTarget(Rank = 4, Alpha = 8, Targets = ["hidden1", "hidden2"])]
public sealed partial class Classifier : nn.Module<Tensor, Tensor>
{
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
}
