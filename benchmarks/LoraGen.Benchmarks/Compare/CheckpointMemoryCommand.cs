using System.Diagnostics;
using LoraGen.Benchmarks.Models;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary>
/// <c>checkpoint-memory</c>: how much memory <c>LoadPretrained</c> needs beyond the model, on a checkpoint the
/// size of all-MiniLM-L6-v2 (90.9 MB; its largest tensor, the word embeddings, is 46.9 MB). Writes the checkpoint
/// with <c>SavePretrained</c>, builds a second model, resets the process's peak (VmHWM), loads, and reports the
/// peak resident set over the resident set before the load. Run it in a process of its own.
/// </summary>
public static class CheckpointMemoryCommand
{
    public static int Run(Arguments args)
    {
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
            using var model = new MiniLmShapes();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            File.WriteAllText("/proc/self/clear_refs", "5");
            var process = Process.GetCurrentProcess();
            long before = process.WorkingSet64;
            var clock = Stopwatch.StartNew();
            model.LoadPretrained(directory);
            clock.Stop();
            process.Refresh();
            long peak = process.PeakWorkingSet64;

            Report.Line("checkpoint.file_mb", fileBytes / 1e6);
            Report.Line("checkpoint.largest_tensor_mb", largestBytes / 1e6);
            Report.Line("checkpoint.rss_before_load_mb", before / 1e6);
            Report.Line("checkpoint.peak_rss_over_before_mb", (peak - before) / 1e6);
            Report.Line("checkpoint.load_seconds", clock.Elapsed.TotalSeconds);
            return 0;
        }
        finally
        {
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        }
    }
}
