using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>Hugging Face's <c>BertAttention</c>: self-attention (<c>self</c>) and its residual output (<c>output</c>).</summary>
public sealed class BertAttention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly BertSelfAttention self;
    private readonly BertOutput output;

    public BertAttention(BertConfig config) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(config);
        output = new BertOutput(config.HiddenSize, config);
        RegisterComponents();
    }

    /// <summary>Hidden states [batch, length, hidden] after attention, for the layer's input and the additive mask.</summary>
    public override Tensor forward(Tensor hidden, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        return output.call(self.call(hidden, additiveMask), hidden).MoveToOuterDisposeScope();
    }
}
