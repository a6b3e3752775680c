using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using LoraGen.Files;
using LoraGen.SaveLoop;
using LoraGen.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

/// <summary>
/// Kills processes that save adapters to one directory, at random instants, and checks after every kill that
/// the directory loads as one complete save. LORAGEN_KILL_LOOP_KILLS sets the number of kills (200 by default,
/// about half a minute on 2 cores); docs/file-formats.md has a longer run.
/// </summary>
public sealed class KillLoopTests(ITestOutputHelper output)
{
    private const int Workers = 2;
    private const int MaxDelayMilliseconds = 40;

    [Fact]
    public void Saves_killed_at_random_instants_always_load_as_one_complete_save()
    {
        int kills = int.Parse(Environment.GetEnvironmentVariable("LORAGEN_KILL_LOOP_KILLS") ?? "200", CultureInfo.InvariantCulture);
        var directories = Enumerable.Range(0, Workers).Select(_ => ScratchDirectories.New()).ToList();
        try
        {
            var tallies = new Tally[Workers];
            Parallel.For(0, Workers, new ParallelOptions { MaxDegreeOfParallelism = Workers },
                worker => tallies[worker] = KillRepeatedly(directories[worker], kills / Workers, seed: worker));
            var total = tallies.Aggregate((a, b) => a + b);
            output.WriteLine(total.ToString());

            Assert.Equal(kills / Workers * Workers, total.Kills);
            Assert.Equal(total.Kills, total.Loaded);
            // The kills did land inside saves: most left a save's temporary files behind.
            Assert.True(total.LeftTemporaries >= total.Kills / 4, $"only {total.LeftTemporaries} of {total.Kills} kills interrupted a save");
            Assert.True(total.DistinctRanks == 2, "the saves should alternate between rank 32 and rank 64");

            // The next save cleans what the killed ones left.
            foreach (var directory in directories)
            {
                var model = new SaveLoopModel();
                model.ApplyLora();
                model.SaveAdapter(directory);
                Assert.Equal(["adapter_config.json", "adapter_model.safetensors"],
                    Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            }
        }
        finally
        {
            foreach (var directory in directories)
                Directory.Delete(directory, recursive: true);
        }
    }

    private static Tally KillRepeatedly(string directory, int kills, int seed)
    {
        var random = new Random(seed);
        var tally = new Tally();
        long lastLoaded = -1;
        for (int i = 0; i < kills; i++)
        {
            // The child completes save lastLoaded + 1 before it says it is ready, then goes on saving.
            using (var child = StartSaving(directory, first: lastLoaded + 1))
            {
                Thread.Sleep(random.Next(MaxDelayMilliseconds + 1));
                child.Kill();
                child.WaitForExit();
            }
            tally.Kills++;
            if (Directory.EnumerateFiles(directory, ".*").Any())
                tally.LeftTemporaries++;
            if (ConfigOnDiskIsNotTheWeights(directory))
                tally.Recovered++;
            long k = LoadAndIdentify(directory);
            Assert.True(k >= lastLoaded, $"kill {i}: the directory went back from save {lastLoaded} to save {k}");
            lastLoaded = k;
            tally.Loaded++;
            tally.Ranks.Add(SaveContent.RankOf(k));
        }
        return tally;
    }

    // Loads the directory into a fresh model and returns which save it holds, checking that every value, the
    // rank and the scaling are exactly that save's.
    private static long LoadAndIdentify(string directory)
    {
        using var model = new SaveLoopModel();
        model.LoadAdapter(directory);
        var layers = model.LoraLayers().ToList();
        Assert.Equal(SaveContent.Layers.Length, layers.Count);
        float a = model.NamedLoraParameters().First().Parameter[0, 0].item<float>();
        long k = (long)(a - 0.25f);
        Assert.Equal(SaveContent.AValue(k), a);
        foreach (var (path, layer) in layers)
        {
            Assert.Equal(SaveContent.RankOf(k), layer.Rank);
            Assert.Equal(SaveContent.AlphaOf(k) / SaveContent.RankOf(k), layer.Scaling, 12);
        }
        foreach (var (path, parameter) in model.NamedLoraParameters())
        {
            float expected = path.Contains(".lora_A.", StringComparison.Ordinal) ? SaveContent.AValue(k) : SaveContent.BValue(k);
            Assert.True(parameter.eq(expected).all().item<bool>(), $"{path} is not all {expected} (save {k})");
        }
        return k;
    }

    private static bool ConfigOnDiskIsNotTheWeights(string directory)
    {
        using var weights = SafetensorsReader.Open(Path.Combine(directory, AdapterDirectory.WeightsFileName));
        string onDisk = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(directory, AdapterConfig.FileName))));
        return weights.Metadata[AdapterDirectory.ConfigHashKey] != onDisk;
    }

    private static Process StartSaving(string directory, long first)
    {
        string dll = typeof(KillLoopTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(attribute => attribute.Key == "SaveLoopDll").Value!;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in new[] { dll, directory, first.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(argument);
        var child = Process.Start(start)!;
        string? line = child.StandardOutput.ReadLine();
        Assert.Equal("ready", line);
        return child;
    }

    private sealed class Tally
    {
        public int Kills, Loaded, LeftTemporaries, Recovered;
        public HashSet<int> Ranks { get; } = [];

        public int DistinctRanks => Ranks.Count;

        public static Tally operator +(Tally x, Tally y)
        {
            var sum = new Tally
            {
                Kills = x.Kills + y.Kills, Loaded = x.Loaded + y.Loaded,
                LeftTemporaries = x.LeftTemporaries + y.LeftTemporaries, Recovered = x.Recovered + y.Recovered,
            };
            sum.Ranks.UnionWith(x.Ranks);
            sum.Ranks.UnionWith(y.Ranks);
            return sum;
        }

        public override string ToString() =>
            $"{Kills} kills: {Loaded} loaded as one complete save, " +
            $"{LeftTemporaries} left a save's temporary files, {Recovered} between the two renames (config read from the temporary file)";
    }
}
