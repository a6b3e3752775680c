using System.Globalization;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Suites;

/// <summary>The torch intra-op thread count the BenchmarkDotNet suites run at: LORAGEN_BENCH_THREADS, default 1.</summary>
public static class TorchThreads
{
    public static IEnumerable<int> FromEnvironment() =>
        [int.Parse(Environment.GetEnvironmentVariable("LORAGEN_BENCH_THREADS") ?? "1", CultureInfo.InvariantCulture)];

    /// <summary>Sets the thread count explicitly (never left to the library's default) and checks it took.</summary>
    public static void Set(int threads)
    {
        set_num_threads(threads);
        if (get_num_threads() != threads)
            throw new InvalidOperationException($"torch kept {get_num_threads()} threads, {threads} were asked for.");
    }
}
