using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>
/// Hugging Face's <c>BertModel</c> in TorchSharp, with its module names, so a BERT checkpoint's keys
/// (<c>embeddings.word_embeddings.weight</c>, <c>encoder.layer.0.attention.self.query.weight</c>, …,
/// <c>pooler.dense.weight</c>) are this model's parameter paths. Single-segment input: every token type is 0.
/// </summary>
public sealed class BertModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly BertEmbeddings embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler pooler;

    /// <summary>A model with new weights, initialised as BERT does (see <see cref="BertInit"/>).</summary>
    public BertModel(BertConfig config) : base(nameof(BertModel))
    {
        Config = config;
        embeddings = new BertEmbeddings(config);
        encoder = new BertEncoder(config);
        pooler = new BertPooler(config);
        RegisterComponents();
        BertInit.Apply(this, config);
    }

    /// <summary>The sizes the model was built with.</summary>
    public BertConfig Config { get; }

    /// <summary>The last hidden states [batch, length, hidden] for token ids and attention mask, both [batch, length]
    /// int64 (mask: 1 = token, 0 = padding).</summary>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        var tokenTypes = zeros_like(inputIds);
        var hidden = embeddings.call(inputIds, tokenTypes);
        var additiveMask = AttentionMask.Additive(attentionMask, hidden.dtype);
        return encoder.call(hidden, additiveMask).MoveToOuterDisposeScope();
    }

    /// <summary>The pooled output [batch, hidden], tanh(dense(h[CLS])), of last hidden states from <see cref="forward"/>.</summary>
    public Tensor Pool(Tensor lastHidden) => pooler.call(lastHidden);
}
