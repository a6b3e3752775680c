using static TorchSharp.torch;

namespace QuickStart;

/// <summary>
/// Built-in data: points in 16 dimensions, labelled by which of four chosen coordinates is largest.
/// Task A looks at coordinates 0–3, task B at 4–7, so B needs new knowledge the model lacks.
/// </summary>
public sealed record ArgmaxTask(string Name, int FirstFeature)
{
    public const int Features = 16;
    public const int Classes = 4;

    public (Tensor X, Tensor Labels) Sample(int count, Generator generator)
    {
        var x = randn([count, Features], generator: generator);
        var labels = x.narrow(1, FirstFeature, Classes).argmax(1);
        return (x, labels);
    }
}
