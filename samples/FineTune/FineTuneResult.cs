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
    string OutputDirectory,
    string PlotPath,
    TimeSpan Elapsed);
