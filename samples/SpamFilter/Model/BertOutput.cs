using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>
/// The residual end of a sub-layer: LayerNorm(dropout(dense(x)) + input). Hugging Face has two classes for it,
/// <c>BertSelfOutput</c> (after attention, hidden → hidden) and <c>BertOutput</c> (after the feed-forward layer,
/// intermediate → hidden), which compute the same thing; only their input widths differ.
/// </summary>
public sealed class BertOutput : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> dense;
    private readonly nn.Module<Tensor, Tensor> LayerNorm;
    private readonly nn.Module<Tensor, Tensor> dropout;

    public BertOutput(int inputSize, BertConfig config) : base(nameof(BertOutput))
    {
        dense = nn.Linear(inputSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, eps: config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>The sub-layer's output [batch, length, hidden] from its last activation <paramref name="x"/> and the
    /// sub-layer's input <paramref name="residual"/> [batch, length, hidden].</summary>
    public override Tensor forward(Tensor x, Tensor residual)
    {
        using var scope = NewDisposeScope();
        return LayerNorm.call(dropout.call(dense.call(x)) + residual).MoveToOuterDisposeScope();
    }
}
