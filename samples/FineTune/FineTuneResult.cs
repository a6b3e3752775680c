namespace FineTune;

/// <summary>One row of the comparison: a model after its training run.</summary>
public sealed record MethodResult(
    string Method,
    double AccuracyB,
    double AccuracyA,
    long TrainableParameters,
    long AllParameters,
    long FileBytes,
    string FileName,
    TrainingLog Training)
{
    public double TrainablePercent => 100.0 * TrainableParameters / AllParameters;
}

/// <summary>Everything the sample measured, for the table, the README and the tests.</summary>
public sealed record FineTuneResult(
    string Device,
    double PretrainedAccuracyA,
    double PretrainedAccuracyB,
    MethodResult Full,
    MethodResult Lora,
    double LoraAccuracyAWithAdaptersDisabled,
    double LoraTaskAMaxLogitDifference,
    double ReloadedAccuracyB,
    double ReloadedMaxLogitDifference,
    double MergedMaxLogitDifference,
    double MergedAccuracyB,
    ManyAdaptersResult ManyAdapters,
    string OutputDirectory,
    string PlotPath,
    TimeSpan Elapsed)
{
    /// <summary>With <c>--quantize</c>: the LoRA fine-tune again over a quantized base, against the float one.</summary>
    public QuantizedLoraResult? Quantized { get; init; }
}

/// <summary>
/// One LoRA fine-tune on task B over a quantized base (QLoRA: every frozen Linear stored quantized, the adapter
/// on the float token embedding), from the same pretrained weights, seeds and data as the float-base run.
/// </summary>
public sealed record QuantizedLoraResult(
    string Kind,
    MethodResult FloatBase,
    double FloatBaseAccuracyAWithAdaptersDisabled,
    MethodResult QuantizedBase,
    double QuantizedAccuracyAWithAdaptersDisabled,
    long FloatLinearBytes,
    long QuantizedLinearBytes,
    TimeSpan Elapsed)
{
    /// <summary>Task B accuracy, quantized base minus float base, in percentage points.</summary>
    public double DifferenceBPoints => 100 * (QuantizedBase.AccuracyB - FloatBase.AccuracyB);
}

/// <summary>How one task is answered on the shared base: by its adapter trained alone, switched to per request
/// (<c>SetActiveAdapters</c>), inside one mixed batch (<c>AdapterPerSample</c>), and reloaded from its file into a
/// fresh base. <see cref="Adapter"/> is <c>"__base__"</c> for task A, which runs on the base alone.</summary>
public sealed record AdapterTaskResult(string Task, string Adapter, double Alone, double Switched, double Mixed, double Reloaded);

/// <summary>The second part of the sample: two adapters on one frozen base. Each max |Δlogit| is over every
/// answer-slot logit of every task, against the task's adapter alone.</summary>
public sealed record ManyAdaptersResult(
    IReadOnlyList<AdapterTaskResult> Tasks,
    TrainingLog KeyboardTraining,
    long MixedBatchSize,
    double SwitchedMaxLogitDifference,
    double MixedMaxLogitDifference,
    double ReloadedMaxLogitDifference,
    /// <summary>Where the two adapters went, relative to the output directory: "adapter/", "adapter/keyboard/".</summary>
    IReadOnlyList<string> SavedDirectories);
