using SpamFilter.Runs;

namespace SpamFilter;

/// <summary>One run's outcome: test scores, cost, what it kept of the pretrained model.</summary>
/// <param name="Kept">The fine-tuned model's sentence embeddings against the pretrained model's (for LoRA:
/// adapters on).</param>
public sealed record RunResult(Method Method, double Accuracy, double F1, long TrainableParameters, long AllParameters,
    long FileBytes, string FileKind, TrainingLog Training, Kept Kept)
{
    public double TrainablePercent => 100.0 * TrainableParameters / AllParameters;
}

/// <summary>What the sample measured, for the table, the README and the tests.</summary>
/// <param name="LoraAdaptersOff">The LoRA model with <c>DisableAdapters()</c> against the pretrained model.</param>
/// <param name="ReloadedMaxDifference">max |Δlogit| on the test set between the trained LoRA model and a fresh model
/// given the exported base (Hugging Face layout) and then the exported adapter (PEFT layout).</param>
/// <param name="MergedSamePredictions">Whether the merged LoRA model predicts every test message as the unmerged one.</param>
public sealed record SpamFilterResult(string Device, int TrainMessages, int TestMessages, int ForgettingTexts,
    IReadOnlyList<RunResult> Runs, Kept LoraAdaptersOff, double ReloadedMaxDifference, bool MergedSamePredictions,
    double MergedMaxDifference, string AdapterDirectory, string BaseDirectory, string PlotPath, double Seconds)
{
    public RunResult Run(Method method) => Runs.Single(r => r.Method == method);
}
