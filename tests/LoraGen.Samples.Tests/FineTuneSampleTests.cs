using FineTune;
using LoraGen;
using static TorchSharp.torch;

namespace LoraGen.Samples.Tests;

public sealed class FineTuneSampleTests(QuickFineTune run) : IClassFixture<QuickFineTune>
{
    // Closed form for the model in samples/FineTune: one adapter, rank 16 on the token embedding of
    // 95 characters × 64: A is [16, 95], B is [64, 16].
    private const long LoraParametersAtRank16 = 16 * (95 + 64);

    [Fact]
    public void Prints_the_side_by_side_table_and_the_plot_path()
    {
        Assert.Contains("full fine-tuning", run.Output);
        Assert.Contains("task B accuracy", run.Output);
        Assert.Contains("task A, base model kept", run.Output);
        Assert.Contains("time per training step", run.Output);
        Assert.Contains("Loss curves: " + run.Result.PlotPath, run.Output.Replace("\n", ""));
    }

    [Fact]
    public void Writes_a_valid_png_of_the_loss_curves()
    {
        var bytes = File.ReadAllBytes(run.Result.PlotPath);
        byte[] signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        Assert.Equal(signature, bytes.Take(8));
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        int width = (bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19];
        int height = (bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23];
        Assert.Equal((900, 540), (width, height));
        Assert.Equal(run.OutputDirectory, Path.GetDirectoryName(run.Result.PlotPath));
    }

    [Fact]
    public void LoRA_trains_under_ten_percent_of_the_parameters()
    {
        Assert.Equal(LoraParametersAtRank16, run.Result.Lora.TrainableParameters);
        Assert.True(run.Result.Lora.TrainablePercent < 10, $"{run.Result.Lora.TrainablePercent}%");
        Assert.Equal(run.Result.Full.AllParameters, run.Result.Full.TrainableParameters);
        Assert.Equal(run.Result.Full.AllParameters + LoraParametersAtRank16, run.Result.Lora.AllParameters);
    }

    [Fact]
    public void The_adapter_file_is_a_small_fraction_of_the_checkpoint()
    {
        // float32 adapter tensors plus a JSON config, against every weight in float32.
        Assert.InRange(run.Result.Lora.FileBytes, 4 * LoraParametersAtRank16, 4 * LoraParametersAtRank16 + 8192);
        Assert.True(run.Result.Full.FileBytes >= 4 * run.Result.Full.AllParameters);
        Assert.True(File.Exists(Path.Combine(run.OutputDirectory, "adapter", "adapter_config.json")));
    }

    [Fact]
    public void The_reloaded_adapter_gives_the_same_answers()
    {
        Assert.Equal(run.Result.Lora.AccuracyB, run.Result.ReloadedAccuracyB);
        Assert.Equal(0, run.Result.ReloadedMaxLogitDifference);
    }

    [Fact]
    public void Merging_keeps_the_outputs()
    {
        Assert.InRange(run.Result.MergedMaxLogitDifference, 0, 1e-4);
        Assert.Equal(run.Result.Lora.AccuracyB, run.Result.MergedAccuracyB);
    }

    [Fact]
    public void The_base_under_the_adapter_still_knows_task_A()
    {
        Assert.Equal(run.Result.PretrainedAccuracyA, run.Result.LoraAccuracyAWithAdaptersDisabled);
    }

    [Fact]
    public void With_the_adapter_on_task_A_is_answered_as_by_the_pretrained_model()
    {
        // Task A's characters never occur in task B's input, so their embedding rows get no update: the
        // logits, not only the answers, are the pretrained model's.
        Assert.Equal(0, run.Result.LoraTaskAMaxLogitDifference);
        Assert.Equal(run.Result.PretrainedAccuracyA, run.Result.Lora.AccuracyA);
    }

    [Fact]
    public void Prints_the_two_adapter_table()
    {
        // The caption wraps at the console's width: compare with the line breaks and padding folded.
        var text = System.Text.RegularExpressions.Regex.Replace(run.Output, @"\s+", " ");
        Assert.Contains("One base, two adapters", text);
        Assert.Contains("QWE#RTY>....", text);
        Assert.Contains($"mixed batch: {3 * run.Options.TestExamples} sums of the three tasks interleaved, one forward", text);
        Assert.Contains("max |Δlogit| against each task's adapter alone: switched 0.0E+0", text);
        Assert.Contains("saved as adapter/ and adapter/keyboard/", text);
    }

    [Fact]
    public void Each_adapter_serves_its_task_as_when_alone_switched_mixed_and_reloaded()
    {
        var many = run.Result.ManyAdapters;
        Assert.Equal(["__base__", "default", "keyboard"], many.Tasks.Select(t => t.Adapter));
        Assert.Equal(run.Result.PretrainedAccuracyA, many.Tasks[0].Alone);
        Assert.Equal(run.Result.Lora.AccuracyB, many.Tasks[1].Alone);
        foreach (var task in many.Tasks)
        {
            Assert.Equal(task.Alone, task.Switched);
            Assert.Equal(task.Alone, task.Mixed);
            Assert.Equal(task.Alone, task.Reloaded);
        }
        Assert.Equal(3L * run.Options.TestExamples, many.MixedBatchSize);
        Assert.Equal(0, many.SwitchedMaxLogitDifference);
        Assert.Equal(0, many.ReloadedMaxLogitDifference);
        // The frozen blocks see a batch three times as large as each task's alone; on this CPU the logits are
        // still identical (measured 0), a float tolerance allows for kernels that block by batch size.
        Assert.InRange(many.MixedMaxLogitDifference, 0, 1e-5);
    }

    [Fact]
    public void Both_adapters_are_saved_in_PEFTs_layout()
    {
        Assert.Equal(["adapter/", "adapter/keyboard/"], run.Result.ManyAdapters.SavedDirectories);
        foreach (var directory in new[] { "adapter", Path.Combine("adapter", "keyboard") })
        {
            Assert.True(File.Exists(Path.Combine(run.OutputDirectory, directory, "adapter_config.json")), directory);
            Assert.True(File.Exists(Path.Combine(run.OutputDirectory, directory, "adapter_model.safetensors")), directory);
        }
    }

    [Fact]
    public void The_keyboard_adapter_trained_beside_the_letters_one_equals_one_trained_alone()
    {
        // Trained on a base that holds no other adapter, with the sample's seeds: the same weights as the
        // sample's, trained beside the inactive letters adapter (read back from adapter/keyboard/).
        var basePath = Path.Combine(run.OutputDirectory, "base.safetensors");
        using var alone = new CharTransformer();
        alone.LoadCheckpoint(basePath);
        FineTuneSample.TrainKeyboardAdapter(alone, run.Options, CPU);
        Assert.Equal(["keyboard"], alone.ModelStatus().AvailableAdapters);
        using var saved = new CharTransformer();
        saved.LoadCheckpoint(basePath);
        saved.LoadAdapter(Path.Combine(run.OutputDirectory, "adapter", "keyboard"), "keyboard");
        using var testC = ArithmeticTask.KeyboardSums.Batch(run.Options.TestExamples, new Random(run.Options.Seed + 300), CPU);
        using var aloneLogits = Evaluation.AnswerLogits(alone, testC);
        using var savedLogits = Evaluation.AnswerLogits(saved, testC);
        Assert.Equal(aloneLogits.data<float>().ToArray(), savedLogits.data<float>().ToArray());
        Assert.Equal(run.Result.ManyAdapters.Tasks[2].Alone, Evaluation.Accuracy(alone, testC));
    }

    [Fact]
    public void Both_runs_log_their_loss_and_their_costs()
    {
        foreach (var (name, log) in new[] { (run.Result.Full.Method, run.Result.Full.Training), (run.Result.Lora.Method, run.Result.Lora.Training),
            ("keyboard", run.Result.ManyAdapters.KeyboardTraining) })
        {
            Assert.Equal(run.Options.Steps, log.Losses[^1].Step);
            Assert.True(log.Losses[^1].Loss < log.Losses[0].Loss,
                $"{name}: loss {log.Losses[0].Loss} at step {log.Losses[0].Step}, {log.Losses[^1].Loss} at the end");
            Assert.All(log.Losses, point => Assert.True(double.IsFinite(point.Loss) && point.Loss > 0));
            Assert.True(log.MillisecondsPerStep > 0);
        }
        // Weights + gradients + two AdamW moments of every trained parameter, all float32.
        Assert.Equal(4 * (run.Result.Full.AllParameters * 4), run.Result.Full.Training.TensorBytes);
        Assert.Equal(4 * (run.Result.Lora.AllParameters + 3 * LoraParametersAtRank16), run.Result.Lora.Training.TensorBytes);
    }
}
