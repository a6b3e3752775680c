using System.Diagnostics;
using System.Globalization;
using LoraGen.Benchmarks.Models;
using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary>
/// <c>checkpoint-memory [--mode float|nf4|empty-float|empty-nf4]</c>: the memory of building a model and loading a
/// checkpoint the size of all-MiniLM-L6-v2 into it (90.9 MB; its largest tensor, the word embeddings, is 46.9 MB).
/// <c>float</c>: build, LoadPretrained. <c>nf4</c>: build, LoadPretrained with <c>Quantize = Nf4</c> (every Linear but
/// the pooler, a field declared Linear). The <c>empty-</c> modes build with <see cref="EmptyWeights"/> first, so no
/// float weight exists before the file's. Without --mode, runs each in a process of its own and prints all. Reports
/// the loaded model's tensor bytes and the peak resident set (VmHWM) over the resident set before the model was built
/// (after writing the checkpoint and handing freed memory back).
/// </summary>
public static class CheckpointMemoryCommand
{
    private static readonly string[] Modes = ["float", "nf4", "empty-float", "empty-nf4"];

    public static int Run(Arguments args)
    {
        var mode = args.Text("mode", "");
        if (mode.Length == 0)
        {
            foreach (var each in Modes)
                foreach (var line in ChildProcess.Run("checkpoint-memory", "--mode", each))
                    Console.WriteLine(line);
            return 0;
        }
        if (!Modes.Contains(mode))
            throw new ArgumentException($"unknown mode '{mode}': use one of {string.Join(", ", Modes)}");
        string directory = Path.Combine(Path.GetTempPath(), $"loragen-checkpoint-memory-{Environment.ProcessId}");
        try
        {
            long fileBytes, largestBytes;
            using (var source = new MiniLmShapes())
            {
                source.SavePretrained(directory);
                fileBytes = new FileInfo(Path.Combine(directory, "model.safetensors")).Length;
                largestBytes = source.parameters().Max(p => p.numel() * p.element_size());
            }
            Rss.ReleaseFreeMemory();
            long before = Rss.CurrentBytes();
            Rss.ResetPeak();
            var clock = Stopwatch.StartNew();
            using var model = mode.StartsWith("empty-", StringComparison.Ordinal) ? EmptyWeights.Create(() => new MiniLmShapes()) : new MiniLmShapes();
            model.LoadPretrained(directory, mode.EndsWith("nf4", StringComparison.Ordinal)
                ? new PretrainedLoadOptions { Quantize = QuantizationKind.Nf4, KeepInFloat = ["pooler"] }
                : null);
            clock.Stop();
            long peak = Rss.PeakBytes();
            long modelBytes = model.parameters().Sum(p => p.numel() * p.element_size()) + model.buffers().Sum(b => b.numel() * b.element_size());

            var prefix = $"checkpoint.{mode}";
            Report.Line($"{prefix}.file_mb", fileBytes / 1e6);
            Report.Line($"{prefix}.largest_tensor_mb", largestBytes / 1e6);
            Report.Line($"{prefix}.loaded_model_mb", modelBytes / 1e6);
            Report.Line($"{prefix}.peak_rss_over_before_mb", (peak - before) / 1e6);
            Report.Line($"{prefix}.build_and_load_seconds", clock.Elapsed.TotalSeconds);
            return 0;
        }
        finally
        {
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        }
    }
}

/// <summary>Runs this benchmark program again with other arguments in a process of its own (so its VmHWM is its
/// own) and returns its output lines.</summary>
internal static class ChildProcess
{
    public static IReadOnlyList<string> Run(params string[] arguments) => Run(null, arguments);

    /// <param name="environment">Variables set for the child only (e.g. GLIBC_TUNABLES, read when it starts).</param>
    public static IReadOnlyList<string> Run(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        // Under `dotnet LoraGen.Benchmarks.dll` the process is the dotnet host: pass it the assembly again.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            start.ArgumentList.Add(typeof(ChildProcess).Assembly.Location);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0)
            throw new InvalidOperationException($"{string.Join(' ', arguments)} exited with {child.ExitCode}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
