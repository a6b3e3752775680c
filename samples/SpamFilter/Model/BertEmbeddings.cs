using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>
/// Hugging Face's <c>BertEmbeddings</c>: word + position + token-type embeddings, then LayerNorm and dropout.
/// Positions are 0…length−1, computed here rather than kept as the <c>position_ids</c> buffer that older
/// checkpoints carry (transformers no longer saves it; the importer checks the ONNX file's copy is exactly that range).
/// </summary>
public sealed class BertEmbeddings : nn.Module<Tensor, Tensor, Tensor>
{
    // Declared as a module, not Embedding, so that QLoRA can put a QuantizedEmbedding here (QuantizeFrozenEmbeddings).
    private readonly nn.Module<Tensor, Tensor> word_embeddings;
    private readonly nn.Module<Tensor, Tensor> position_embeddings;
    private readonly nn.Module<Tensor, Tensor> token_type_embeddings;
    private readonly nn.Module<Tensor, Tensor> LayerNorm;
    private readonly nn.Module<Tensor, Tensor> dropout;
    private readonly int maxPositions;
    private readonly int padTokenId;

    public BertEmbeddings(BertConfig config) : base(nameof(BertEmbeddings))
    {
        word_embeddings = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: config.PadTokenId);
        position_embeddings = nn.Embedding(config.MaxPositions, config.HiddenSize);
        token_type_embeddings = nn.Embedding(config.TypeVocabSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, eps: config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        maxPositions = config.MaxPositions;
        padTokenId = config.PadTokenId;
        RegisterComponents();
    }

    /// <summary>Sets the padding token's word-embedding row to 0, as BERT initialises it.</summary>
    internal void ZeroPaddingRow()
    {
        using var noGrad = no_grad();
        ((Embedding)word_embeddings).weight![padTokenId].zero_();
    }

    /// <summary>Hidden states [batch, length, hidden] for token ids and token-type ids, both [batch, length] int64.</summary>
    public override Tensor forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        long length = inputIds.shape[1];
        if (length > maxPositions)
            throw new ArgumentException($"A sequence of {length} tokens is longer than the {maxPositions} positions the model has.", nameof(inputIds));
        using var scope = NewDisposeScope();
        var positions = arange(length, dtype: ScalarType.Int64, device: inputIds.device);
        var sum = word_embeddings.call(inputIds) + token_type_embeddings.call(tokenTypeIds) + position_embeddings.call(positions);
        return dropout.call(LayerNorm.call(sum)).MoveToOuterDisposeScope();
    }
}
