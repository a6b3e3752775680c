using SpamFilter.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Models;

/// <summary>
/// Workload (c): samples/SpamFilter's classifier, <see cref="BertForSequenceClassification"/> with all-MiniLM-L6-v2's
/// architecture (<see cref="BertConfig.MiniLmL6"/>: 6 post-norm layers of width 384, 12 heads, a 1,536-wide
/// feed-forward, a 30,522-token vocabulary, 22.7 M parameters) and a 2-label head, with new (random) weights.
/// The sample's own class and its generated LoRA code are what run: rank 8, alpha 16 on <c>query</c> and
/// <c>value</c> of every layer (12 adapters), and the head (<c>classifier</c>) trained in full, as its
/// <c>[LoraTarget]</c> attributes say. This module only adapts its two-input forward to the one input the
/// benchmarks pass: token ids [batch, length], every token real (attention mask all ones), as a batch of
/// unpadded sequences. benchmarks/peer/peer.py builds the same model in PyTorch.
/// </summary>
public sealed class SpamFilterBert : nn.Module<Tensor, Tensor>
{
    /// <summary>How many classes the head tells apart (spam, ham).</summary>
    public const int Labels = 2;

    private readonly BertForSequenceClassification model;

    public SpamFilterBert() : base(nameof(SpamFilterBert))
    {
        model = new BertForSequenceClassification(BertConfig.MiniLmL6, Labels);
        RegisterComponents();
    }

    /// <summary>The vocabulary the token ids are drawn from.</summary>
    public static int Vocabulary => BertConfig.MiniLmL6.VocabSize;

    /// <summary>Logits [batch, labels] for token ids [batch, length].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var mask = ones_like(ids);
        return model.call(ids, mask).MoveToOuterDisposeScope();
    }
}
