using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>Hugging Face's <c>BertIntermediate</c>: the feed-forward layer's first half, GELU(dense(x)) with the exact
/// (erf) GELU that BERT's <c>hidden_act = "gelu"</c> names, not the tanh approximation.</summary>
public sealed class BertIntermediate : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> dense;

    public BertIntermediate(BertConfig config) : base(nameof(BertIntermediate))
    {
        dense = nn.Linear(config.HiddenSize, config.IntermediateSize);
        RegisterComponents();
    }

    /// <summary>[batch, length, intermediate] for hidden states [batch, length, hidden].</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        return nn.functional.gelu(dense.call(hidden)).MoveToOuterDisposeScope();
    }
}
