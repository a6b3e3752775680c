using System.Diagnostics.CodeAnalysis;
using LoraGen;
using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>
/// Hugging Face's <c>BertForSequenceClassification</c>: the encoder under <c>bert.</c>, then
/// classifier(dropout(pooler output)). Its paths are those of a transformers model, so a LoRA adapter saved from it
/// has PEFT's keys (<c>base_model.model.bert.encoder.layer.N.attention.self.query.lora_A.weight</c>, and the head as
/// <c>classifier</c> in <c>modules_to_save</c>).
/// <para>
/// The head is new, so LoRA trains it in full next to the adapters: it is a <c>Trainable</c> field of this class.
/// This class has no layer of its own to adapt (the adapters are in <see cref="BertSelfAttention"/>), which the
/// analyzers report as LORA0010; that is the intent here, as the LORA0010 page says for a head-only class.
/// </para>
/// </summary>
[LoraTarget(Trainable = ["classifier"])]
[SuppressMessage("LoraGen", "LORA0010", Justification = "Only the new head is trained here; the adapters are in BertSelfAttention.")]
public sealed partial class BertForSequenceClassification : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly BertModel bert;
    private readonly nn.Module<Tensor, Tensor> dropout;
    private readonly nn.Module<Tensor, Tensor> classifier;

    /// <summary>A classifier with new weights everywhere (BERT's initialisation); load the encoder's with
    /// <c>LoadPretrained</c> (see <c>MiniLmCheckpoint.LoadClassifier</c>).</summary>
    public BertForSequenceClassification(BertConfig config, int labels = 2) : base(nameof(BertForSequenceClassification))
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(labels, 2);
        Labels = labels;
        bert = new BertModel(config);
        dropout = nn.Dropout(config.HiddenDropout);
        classifier = nn.Linear(config.HiddenSize, labels);
        RegisterComponents();
        BertInit.Apply(classifier, config);
    }

    /// <summary>How many classes the head tells apart.</summary>
    public int Labels { get; }

    /// <summary>The encoder (<c>bert.</c>).</summary>
    public BertModel Bert => bert;

    /// <summary>Logits [batch, labels] for token ids and attention mask, both [batch, length] int64.</summary>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        var pooled = bert.Pool(bert.call(inputIds, attentionMask));
        return classifier.call(dropout.call(pooled)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sentence embeddings [batch, hidden]: the encoder's last hidden states mean-pooled over the attention mask, as
    /// sentence-transformers computes them (see <see cref="MeanPooling"/>). With <paramref name="normalize"/>, scaled
    /// to unit length, as the whole all-MiniLM-L6-v2 pipeline (its last module is Normalize) returns them. Run in
    /// eval mode for deterministic values.
    /// </summary>
    public Tensor SentenceEmbeddings(Tensor inputIds, Tensor attentionMask, bool normalize = false)
    {
        using var scope = NewDisposeScope();
        var pooled = MeanPooling.Apply(bert.call(inputIds, attentionMask), attentionMask);
        return (normalize ? nn.functional.normalize(pooled, p: 2, dim: 1) : pooled).MoveToOuterDisposeScope();
    }
}
