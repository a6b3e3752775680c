using FineTune;

namespace LoraGen.Samples.Tests;

/// <summary>One --quick run of the main sample, shared by the tests that read its results.</summary>
public sealed class QuickFineTune : IDisposable
{
    public QuickFineTune()
    {
        OutputDirectory = ScratchDirectories.NewPath("finetune-");
        Options = SampleOptions.Parse(["--quick", "--device", "cpu", "--out", OutputDirectory]);
        var console = new RecordingConsole();
        Result = FineTuneSample.Run(Options, console.Console);
        Output = console.Text;
    }

    public SampleOptions Options { get; }
    public string OutputDirectory { get; }
    public FineTuneResult Result { get; }
    public string Output { get; }

    public void Dispose()
    {
        if (Directory.Exists(OutputDirectory))
            Directory.Delete(OutputDirectory, recursive: true);
    }
}
