namespace SpamFilter.Model;

/// <summary>
/// The sizes and constants of a BERT encoder, with Hugging Face's <c>BertConfig</c> meanings. The values that
/// change what the model computes (the LayerNorm epsilon, the dropout rates) are here rather than in the layers,
/// so a checkpoint's config is stated once.
/// </summary>
/// <param name="VocabSize">Rows of the word embedding (<c>vocab_size</c>).</param>
/// <param name="HiddenSize">Width of every hidden state (<c>hidden_size</c>).</param>
/// <param name="Layers">Transformer layers (<c>num_hidden_layers</c>).</param>
/// <param name="Heads">Attention heads per layer (<c>num_attention_heads</c>); must divide <paramref name="HiddenSize"/>.</param>
/// <param name="IntermediateSize">Width of the feed-forward layer (<c>intermediate_size</c>).</param>
/// <param name="MaxPositions">Rows of the position embedding, the longest sequence (<c>max_position_embeddings</c>).</param>
/// <param name="TypeVocabSize">Rows of the token-type embedding (<c>type_vocab_size</c>).</param>
/// <param name="PadTokenId">The padding token, whose word-embedding row gets no gradient (<c>pad_token_id</c>).</param>
/// <param name="LayerNormEps">Epsilon of every LayerNorm (<c>layer_norm_eps</c>).</param>
/// <param name="HiddenDropout">Dropout after embeddings and each sub-layer, and before the classifier (<c>hidden_dropout_prob</c>).</param>
/// <param name="AttentionDropout">Dropout on the attention probabilities (<c>attention_probs_dropout_prob</c>).</param>
/// <param name="InitializerRange">Standard deviation of the normal initialisation of new weights (<c>initializer_range</c>).</param>
public sealed record BertConfig(
    int VocabSize,
    int HiddenSize,
    int Layers,
    int Heads,
    int IntermediateSize,
    int MaxPositions,
    int TypeVocabSize,
    int PadTokenId,
    double LayerNormEps,
    double HiddenDropout,
    double AttentionDropout,
    double InitializerRange)
{
    /// <summary>sentence-transformers/all-MiniLM-L6-v2 (its config.json): 6 layers of width 384, 12 heads.</summary>
    public static BertConfig MiniLmL6 { get; } = new(
        VocabSize: 30522, HiddenSize: 384, Layers: 6, Heads: 12, IntermediateSize: 1536, MaxPositions: 512,
        TypeVocabSize: 2, PadTokenId: 0, LayerNormEps: 1e-12, HiddenDropout: 0.1, AttentionDropout: 0.1, InitializerRange: 0.02);

    /// <summary>Width of one attention head.</summary>
    public int HeadSize => HiddenSize % Heads == 0
        ? HiddenSize / Heads
        : throw new InvalidOperationException($"{Heads} heads do not divide the hidden size {HiddenSize}.");
}
