using LoraGen;
using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>
/// Hugging Face's <c>BertSelfAttention</c> (the eager path): softmax(Q·Kᵀ / √head + mask)·V per head, with dropout on
/// the attention probabilities in training. LoRA adapts <c>query</c> and <c>value</c>, as PEFT does for BERT by
/// default, so the adapter's keys are PEFT's (<c>bert.encoder.layer.N.attention.self.query</c>, …). Those two fields
/// are declared <see cref="nn.Module{T, TResult}"/> and not readonly: LoRA puts its wrapper in their place.
/// </summary>
[LoraTarget(Rank = 8, Alpha = 16, Targets = ["query", "value"])]
public sealed partial class BertSelfAttention : nn.Module<Tensor, Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> query;
    private readonly nn.Module<Tensor, Tensor> key;
    private nn.Module<Tensor, Tensor> value;
    private readonly nn.Module<Tensor, Tensor> dropout;
    private readonly int heads;
    private readonly int headSize;

    public BertSelfAttention(BertConfig config) : base(nameof(BertSelfAttention))
    {
        query = nn.Linear(config.HiddenSize, config.HiddenSize);
        key = nn.Linear(config.HiddenSize, config.HiddenSize);
        value = nn.Linear(config.HiddenSize, config.HiddenSize);
        dropout = nn.Dropout(config.AttentionDropout);
        heads = config.Heads;
        headSize = config.HeadSize;
        RegisterComponents();
    }

    /// <summary>The attended values [batch, length, hidden], heads concatenated, for hidden states
    /// [batch, length, hidden] and an additive mask that broadcasts to [batch, heads, length, length].</summary>
    public override Tensor forward(Tensor hidden, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        long batch = hidden.shape[0], length = hidden.shape[1];
        Tensor Split(Tensor x) => x.view(batch, length, heads, headSize).transpose(1, 2);
        var q = Split(query.call(hidden));
        var k = Split(key.call(hidden));
        var v = Split(value.call(hidden));
        var scores = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(headSize) + additiveMask;
        var probabilities = dropout.call(nn.functional.softmax(scores, dim: -1));
        var context = probabilities.matmul(v).transpose(1, 2).reshape(batch, length, heads * headSize);
        return context.MoveToOuterDisposeScope();
    }
}
