using SpamFilter.Model;
using static TorchSharp.torch;

namespace SpamFilter.Runs;

/// <summary>Test accuracy and F1 with spam as the positive class, and the logits they came from (disposed with it).</summary>
public sealed record ClassificationScore(double Accuracy, double F1, Tensor Logits) : IDisposable
{
    public void Dispose() => Logits.Dispose();
}

public static class Classification
{
    private const int ChunkSize = 64;

    /// <summary>Scores the first <paramref name="count"/> messages of <paramref name="set"/> (all by default) in eval
    /// mode without gradients; the logits come back on the CPU, detached from any dispose scope.</summary>
    public static ClassificationScore Evaluate(BertForSequenceClassification model, EncodedSet set, Device device, int? count = null)
    {
        model.eval();
        var chunks = new List<Tensor>();
        using (no_grad())
        {
            foreach (var rows in set.Chunks(ChunkSize, count))
            {
                using var scope = NewDisposeScope();
                var (ids, mask, _) = set.Batch(rows, device);
                chunks.Add(model.call(ids, mask).cpu().MoveToOuterDisposeScope());
            }
        }
        var logits = cat(chunks, 0).DetachFromDisposeScope();
        foreach (var chunk in chunks)
            chunk.Dispose();
        var predicted = logits.argmax(1).data<long>().ToArray();
        int truePositive = 0, falsePositive = 0, falseNegative = 0, correct = 0;
        for (int i = 0; i < predicted.Length; i++)
        {
            long label = set.Labels[i];
            correct += predicted[i] == label ? 1 : 0;
            truePositive += predicted[i] == 1 && label == 1 ? 1 : 0;
            falsePositive += predicted[i] == 1 && label == 0 ? 1 : 0;
            falseNegative += predicted[i] == 0 && label == 1 ? 1 : 0;
        }
        double f1 = truePositive == 0 ? 0 : 2.0 * truePositive / (2.0 * truePositive + falsePositive + falseNegative);
        return new ClassificationScore((double)correct / predicted.Length, f1, logits);
    }
}
