using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>Sentence embeddings as sentence-transformers' <c>Pooling(pooling_mode="mean")</c> computes them for
/// all-MiniLM-L6-v2: the mean of the last hidden states over the tokens the attention mask keeps.</summary>
public static class MeanPooling
{
    /// <summary>[batch, hidden]: Σ mask·h / max(Σ mask, 1e-9) for last hidden states [batch, length, hidden] and the
    /// mask [batch, length] (1 = token, 0 = padding). The clamp is sentence-transformers' (an all-padding row gives 0).</summary>
    public static Tensor Apply(Tensor lastHidden, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var weights = mask.to_type(lastHidden.dtype).unsqueeze(-1);
        var sum = (lastHidden * weights).sum(1);
        var count = weights.sum(1).clamp_min(1e-9);
        return (sum / count).MoveToOuterDisposeScope();
    }
}
