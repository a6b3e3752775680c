using System.Diagnostics;
using LoraGen;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace FineTune;

/// <summary>
/// The main sample: pretrain a character-level transformer on sums written in digits (task A), then teach
/// it the same sums in a letter code (task B) from the same weights twice — every weight trained, and a
/// LoRA adapter on the token embedding only — and compare what each learned, what each forgot, and what
/// each costs.
/// </summary>
public static class FineTuneSample
{
    // Each fine-tune at the best rate of a small grid tried on seeds 7 and 9 (full: 1e-3, 3e-3; LoRA:
    // 1e-2, 3e-2, 1e-1). LoRA trains few parameters from a zero update, so it takes a larger step. The
    // warm-up keeps pretraining out of a plateau that some seeds otherwise sit on for its whole length.
    private const double PretrainLearningRate = 3e-3;
    private const int PretrainWarmupSteps = 100;
    private const double FullLearningRate = 3e-3;
    private const double LoraLearningRate = 3e-2;
    private const int MonitorExamples = 256;

    public static FineTuneResult Run(SampleOptions options, IAnsiConsole console)
    {
        var clock = Stopwatch.StartNew();
        TorchNative.EnsureLoaded();
        // The model is tiny: extra intra-op threads only add synchronisation, and on a busy machine
        // LibTorch's spinning worker threads slow every step down many times over (measured: 12 ms → 490 ms).
        torch.set_num_threads(1);
        var device = LoraDevice.Select(options.Device);
        using (var probe = new CharTransformer())
            RankChoice.ApplyLora(probe, options.Rank); // refuses a rank that saves nothing before minutes of training
        var output = Path.GetFullPath(options.OutputDirectory);
        Directory.CreateDirectory(output);
        var taskA = ArithmeticTask.DigitSums;
        var taskB = ArithmeticTask.LetterSums;
        using var testA = taskA.Batch(options.TestExamples, new Random(options.Seed + 100), device);
        using var testB = taskB.Batch(options.TestExamples, new Random(options.Seed + 200), device);
        console.MarkupLine($"[bold]LoRA vs full fine-tuning[/] on {device.type}: a {ModelSize.Layers}-layer character transformer " +
            $"learns {ArithmeticTask.Digits}-digit sums in [green]digits[/] (task A, {Markup.Escape(taskA.Input(123, 456))}), " +
            $"then the same sums in a [yellow]letter code[/] (task B, {Markup.Escape(taskB.Input(123, 456))}); both answer {ArithmeticTask.Answer(123, 456)}.");

        torch.manual_seed(options.Seed);
        using var pretrained = OnDevice(device);
        // The other three start from the pretrained checkpoint; their own initial weights never matter.
        using var fullModel = OnDevice(device);
        using var loraModel = OnDevice(device);
        using var reloaded = OnDevice(device);
        var basePath = Path.Combine(output, "base.safetensors");
        MethodResult full = null!, lora = null!;

        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(),
                new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var pretrainTask = context.AddTask("pretrain on A (all weights)", maxValue: options.PretrainSteps);
                var fullTask = context.AddTask("full fine-tune on B", maxValue: options.Steps);
                var loraTask = context.AddTask("LoRA fine-tune on B", maxValue: options.Steps);

                Trainer.Train(pretrained, pretrained.parameters().ToList(), taskA,
                    new TrainingSettings(options.PretrainSteps, PretrainLearningRate, PretrainWarmupSteps), new Random(options.Seed), device,
                    Monitor(pretrainTask, "pretrain on A (all weights)", pretrained, testA, testB, options.PretrainSteps));
                pretrained.SaveCheckpoint(basePath);

                fullModel.LoadCheckpoint(basePath);
                var fullLog = Trainer.Train(fullModel, fullModel.parameters().ToList(), taskB,
                    new TrainingSettings(options.Steps, FullLearningRate), new Random(options.Seed + 1), device,
                    Monitor(fullTask, "full fine-tune on B", fullModel, testA, testB, options.Steps));
                var fullPath = Path.Combine(output, "full-finetune.safetensors");
                fullModel.SaveCheckpoint(fullPath);
                long allParameters = fullModel.parameters().Sum(p => p.numel());
                full = new MethodResult("full fine-tuning", Evaluation.Accuracy(fullModel, testB), Evaluation.Accuracy(fullModel, testA),
                    allParameters, allParameters, new FileInfo(fullPath).Length, Path.GetFileName(fullPath), fullLog);

                loraModel.LoadCheckpoint(basePath);
                torch.manual_seed(options.Seed + 2);
                var report = RankChoice.ApplyLora(loraModel, options.Rank);
                var loraLog = Trainer.Train(loraModel, loraModel.LoraParameters(), taskB,
                    new TrainingSettings(options.Steps, LoraLearningRate), new Random(options.Seed + 1), device,
                    Monitor(loraTask, "LoRA fine-tune on B", loraModel, testA, testB, options.Steps));
                var adapterPath = Path.Combine(output, "adapter");
                loraModel.SaveAdapter(adapterPath);
                lora = new MethodResult($"LoRA r={options.Rank}", Evaluation.Accuracy(loraModel, testB), Evaluation.Accuracy(loraModel, testA),
                    report.TrainableParameters, report.AllParameters,
                    Directory.GetFiles(adapterPath).Sum(f => new FileInfo(f).Length), "adapter/", loraLog);
            });

        double disabledA;
        using (loraModel.DisableAdapters())
            disabledA = Evaluation.Accuracy(loraModel, testA);
        // Task A with the adapter on, against the pretrained model: the same logits, not only the same answers.
        using var pretrainedLogitsA = Evaluation.AnswerLogits(pretrained, testA);
        using var adaptedLogitsA = Evaluation.AnswerLogits(loraModel, testA);

        // The adapter as a user ships it: a fresh model, the pretrained base, then the adapter file.
        reloaded.LoadCheckpoint(basePath);
        reloaded.LoadAdapter(Path.Combine(output, "adapter"));
        using var unmergedLogits = Evaluation.AnswerLogits(loraModel, testB);
        using var reloadedLogits = Evaluation.AnswerLogits(reloaded, testB);
        double reloadedAccuracy = Evaluation.Accuracy(reloaded, testB);

        loraModel.Merge();
        using var mergedLogits = Evaluation.AnswerLogits(loraModel, testB);
        double mergedAccuracy = Evaluation.Accuracy(loraModel, testB);

        var plotPath = Path.Combine(output, "loss-curves.png");
        LossPlot.Save(plotPath, [("full fine-tuning", full.Training.Losses), (lora.Method, lora.Training.Losses)]);

        var result = new FineTuneResult(device.type.ToString().ToLowerInvariant(),
            Evaluation.Accuracy(pretrained, testA), Evaluation.Accuracy(pretrained, testB), full, lora, disabledA,
            MaxDifference(pretrainedLogitsA, adaptedLogitsA), reloadedAccuracy, MaxDifference(unmergedLogits, reloadedLogits), MaxDifference(unmergedLogits, mergedLogits),
            mergedAccuracy, output, plotPath, clock.Elapsed);
        console.Write(ResultsTable.Build(result));
        console.MarkupLineInterpolated($"Loss curves: [link]{plotPath}[/]");
        console.MarkupLineInterpolated($"Checkpoints and adapter in {output}; done in {result.Elapsed.TotalSeconds:F0} s.");
        return result;
    }

    /// <summary>A new model, moved to the device before anything else touches it, so what is created
    /// later (adapters, optimizer state) lives there too.</summary>
    private static CharTransformer OnDevice(Device device)
    {
        var model = new CharTransformer();
        model.to(device);
        return model;
    }

    /// <summary>Moves the bar at each logged loss; every fifth log also measures both tasks on a few
    /// held-out examples, so forgetting shows while it happens.</summary>
    private static Action<int, double> Monitor(ProgressTask task, string name, CharTransformer model, Tensor testA, Tensor testB, int steps)
    {
        int logs = 0;
        long countA = Math.Min(MonitorExamples, testA.shape[0]), countB = Math.Min(MonitorExamples, testB.shape[0]);
        string accuracies = "";
        // Runs inside the training step's dispose scope, which also disposes the two views.
        return (step, loss) =>
        {
            if (++logs % 5 == 0 || step == steps)
                accuracies = $" · A {ResultsTable.Percent(Evaluation.Accuracy(model, testA.narrow(0, 0, countA)))}" +
                    $" · B {ResultsTable.Percent(Evaluation.Accuracy(model, testB.narrow(0, 0, countB)))}";
            task.Description = $"{name}  loss {loss:F3}{accuracies}";
            task.Value = step;
        };
    }

    private static double MaxDifference(Tensor x, Tensor y)
    {
        using var difference = (x - y).abs().max();
        return difference.item<float>();
    }
}
