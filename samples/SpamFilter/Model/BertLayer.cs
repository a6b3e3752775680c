using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>Hugging Face's <c>BertLayer</c>, post-norm: attention, then the feed-forward layer
/// (<c>intermediate</c>, <c>output</c>), each with its residual LayerNorm.</summary>
public sealed class BertLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly BertAttention attention;
    private readonly BertIntermediate intermediate;
    private readonly BertOutput output;

    public BertLayer(BertConfig config) : base(nameof(BertLayer))
    {
        attention = new BertAttention(config);
        intermediate = new BertIntermediate(config);
        output = new BertOutput(config.IntermediateSize, config);
        RegisterComponents();
    }

    /// <summary>The layer's output [batch, length, hidden].</summary>
    public override Tensor forward(Tensor hidden, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        var attended = attention.call(hidden, additiveMask);
        return output.call(intermediate.call(attended), attended).MoveToOuterDisposeScope();
    }
}
