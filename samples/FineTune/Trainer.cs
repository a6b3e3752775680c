using System.Diagnostics;
using Samples.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FineTune;

/// <summary>
/// How one training run goes: steps, AdamW's learning rate (raised linearly over the first
/// <see cref="WarmupSteps"/>, then cosine-annealed to a tenth), batch size.
/// </summary>
public sealed record TrainingSettings(int Steps, double LearningRate, int WarmupSteps = 0, int BatchSize = 128, int LogEvery = 20)
{
    /// <summary>The learning rate at <paramref name="step"/> (from 0) as a multiple of <see cref="LearningRate"/>.</summary>
    public double LearningRateFactor(int step)
    {
        if (step < WarmupSteps)
            return (step + 1.0) / WarmupSteps;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, Steps - WarmupSteps);
        return 0.1 + 0.45 * (1 + Math.Cos(Math.PI * Math.Min(1, progress)));
    }
}

/// <summary>What a run measured: the logged losses, the time per step and the training-state memory.</summary>
public sealed record TrainingLog(IReadOnlyList<(int Step, double Loss)> Losses, double MillisecondsPerStep, long TensorBytes);

public static class Trainer
{
    /// <summary>
    /// Trains <paramref name="parameters"/> of <paramref name="model"/> on fresh batches of
    /// <paramref name="task"/>. One dispose scope per step keeps native memory flat; the loss leaves the
    /// device only every <see cref="TrainingSettings.LogEvery"/> steps. <paramref name="onLog"/> (step, loss)
    /// runs then, and its time is not counted in the time per step.
    /// </summary>
    public static TrainingLog Train(CharTransformer model, List<Parameter> parameters, ArithmeticTask task,
        TrainingSettings settings, Random data, Device device, Action<int, double>? onLog = null)
    {
        using var optimizer = optim.AdamW(parameters, lr: settings.LearningRate);
        var schedule = optim.lr_scheduler.LambdaLR(optimizer, settings.LearningRateFactor);
        var losses = new List<(int, double)>();
        long tensorBytes = 0;
        var clock = new Stopwatch();
        model.train();
        for (int step = 1; step <= settings.Steps; step++)
        {
            clock.Start();
            using (var scope = NewDisposeScope())
            {
                var batch = task.Batch(settings.BatchSize, data, device);
                optimizer.zero_grad();
                var loss = Evaluation.AnswerLoss(model, batch);
                loss.backward();
                optimizer.step();
                schedule.step();
                if (step == 1)
                    tensorBytes = TrainingMemory.TensorBytes(model);
                if (step % settings.LogEvery == 0 || step == settings.Steps)
                {
                    double value = loss.item<float>();
                    clock.Stop();
                    losses.Add((step, value));
                    onLog?.Invoke(step, value);
                    model.train();
                }
            }
            clock.Stop();
        }
        model.eval();
        return new TrainingLog(losses, clock.Elapsed.TotalMilliseconds / settings.Steps, tensorBytes);
    }
}
