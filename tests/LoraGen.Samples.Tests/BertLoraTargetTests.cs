using LoraGen;
using SpamFilter.Model;
using static TorchSharp.torch;

namespace LoraGen.Samples.Tests;

/// <summary>LoRA on the BERT classifier lands where PEFT puts it for BERT: query and value of every layer's
/// self-attention, with the new head trained in full.</summary>
public sealed class BertLoraTargetTests
{
    // MiniLM's layer count, with small widths (rank 8 still saves parameters on 64 → 64): the paths, not the
    // weights, are under test.
    private static readonly BertConfig Small = BertConfig.MiniLmL6 with
    {
        VocabSize = 40, HiddenSize = 64, Heads = 4, IntermediateSize = 128, MaxPositions = 12,
    };

    [Fact]
    public void Adapters_sit_on_query_and_value_under_peft_paths_and_the_classifier_trains_in_full()
    {
        manual_seed(3);
        using var model = new BertForSequenceClassification(Small);

        model.ApplyLora();

        var expected = Enumerable.Range(0, 6)
            .SelectMany(i => new[] { "query", "value" }.Select(name => $"bert.encoder.layer.{i}.attention.self.{name}"));
        Assert.Equal(expected, model.LoraLayers().Select(layer => layer.Path));
        Assert.All(model.LoraLayers(), layer => Assert.Equal(8, layer.Layer.Rank));
        var trainable = model.NamedLoraParameters().Select(p => p.Path).ToList();
        Assert.Contains("classifier.weight", trainable);
        Assert.Contains("classifier.bias", trainable);
        Assert.Equal(12 * 2 + 2, trainable.Count); // lora_A and lora_B of 12 layers, and the head
    }

    [Fact]
    public void The_classifier_gives_one_logit_per_label_and_its_head_starts_as_bert_initialises_it()
    {
        manual_seed(4);
        using var model = new BertForSequenceClassification(Small, labels: 2);
        model.eval();
        using var ids = tensor(new long[] { 1, 5, 7, 2, 1, 9, 2, 0 }, [2, 4]);
        using var mask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 1, 0 }, [2, 4]);

        using var logits = model.forward(ids, mask);

        Assert.Equal(new long[] { 2, 2 }, logits.shape);
        var head = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(0, head["classifier.bias"].abs().max().item<float>());
        double std = head["classifier.weight"].std().item<float>();
        Assert.InRange(std, 0.01, 0.03); // normal(0, 0.02) over 128 values
        Assert.Equal(0, head["bert.embeddings.word_embeddings.weight"][0].abs().max().item<float>()); // the [PAD] row
    }
}
