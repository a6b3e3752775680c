using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>Hugging Face's <c>BertPooler</c>: tanh(dense(h[CLS])), the first token's last hidden state, which
/// <c>BertForSequenceClassification</c> classifies.</summary>
public sealed class BertPooler : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> dense;

    public BertPooler(BertConfig config) : base(nameof(BertPooler))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>[batch, hidden] for last hidden states [batch, length, hidden].</summary>
    public override Tensor forward(Tensor lastHidden)
    {
        using var scope = NewDisposeScope();
        return tanh(dense.call(lastHidden.select(1, 0))).MoveToOuterDisposeScope();
    }
}
