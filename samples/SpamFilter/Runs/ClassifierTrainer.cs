using System.Diagnostics;
using Samples.Shared;
using SpamFilter.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SpamFilter.Runs;

/// <summary>What a run measured: the loss and curve accuracy at each log point, time per step, training-state memory.</summary>
public sealed record TrainingLog(IReadOnlyList<(int Step, double Loss)> Losses, IReadOnlyList<(int Step, double Accuracy)> Curve,
    double MillisecondsPerStep, long TensorBytes);

public static class ClassifierTrainer
{
    /// <summary>
    /// Trains <paramref name="parameters"/> with AdamW (no weight decay, a linear warm-up over the first tenth, then
    /// linear decay to zero, as transformers' default schedule) on shuffled batches of <paramref name="train"/>.
    /// Every <paramref name="logEvery"/> steps the loss is read and <paramref name="curve"/>'s accuracy measured
    /// (outside the step time). One dispose scope per step keeps native memory flat.
    /// </summary>
    public static TrainingLog Train(BertForSequenceClassification model, List<Parameter> parameters, EncodedSet train,
        EncodedSet curve, int curveTexts, int steps, int batchSize, double learningRate, Device device, Random data,
        int logEvery, Action<int, double, double>? onLog = null)
    {
        using var optimizer = optim.AdamW(parameters, lr: learningRate);
        int warmup = Math.Max(1, steps / 10);
        var schedule = optim.lr_scheduler.LambdaLR(optimizer,
            step => step < warmup ? (step + 1.0) / warmup : Math.Max(0, (double)(steps - step) / Math.Max(1, steps - warmup)));
        var order = new Queue<int>();
        var losses = new List<(int, double)>();
        var accuracies = new List<(int, double)>();
        long tensorBytes = 0;
        var clock = new Stopwatch();
        model.train();
        for (int step = 1; step <= steps; step++)
        {
            clock.Start();
            using (NewDisposeScope())
            {
                var (ids, mask, labels) = train.Batch(NextRows(order, train.Count, batchSize, data), device);
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(model.call(ids, mask), labels);
                loss.backward();
                optimizer.step();
                schedule.step();
                if (step == 1)
                    tensorBytes = TrainingMemory.TensorBytes(model);
                if (step % logEvery == 0 || step == steps)
                {
                    double value = loss.item<float>();
                    clock.Stop();
                    double accuracy;
                    using (var score = Classification.Evaluate(model, curve, device, curveTexts))
                        accuracy = score.Accuracy;
                    losses.Add((step, value));
                    accuracies.Add((step, accuracy));
                    onLog?.Invoke(step, value, accuracy);
                    model.train();
                }
            }
            clock.Stop();
        }
        model.eval();
        return new TrainingLog(losses, accuracies, clock.Elapsed.TotalMilliseconds / steps, tensorBytes);
    }

    // Epochs of a fresh permutation each, so every message is seen before any is seen twice.
    private static List<int> NextRows(Queue<int> order, int count, int batchSize, Random data)
    {
        var rows = new List<int>(batchSize);
        while (rows.Count < batchSize)
        {
            if (order.Count == 0)
                foreach (int row in Enumerable.Range(0, count).OrderBy(_ => data.Next()))
                    order.Enqueue(row);
            rows.Add(order.Dequeue());
        }
        return rows;
    }
}
