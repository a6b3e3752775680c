using LoraGen.Files;
using LoraGen.SaveLoop;
using LoraGen.Tests.Support;

namespace LoraGen.Tests.Files;

/// <summary>The crash states of a save, made by hand, and the cleanup of what crashed saves leave.</summary>
public sealed class AtomicSaveTests
{
    private static void Save(string directory, long k) =>
        AdapterDirectory.Write(directory, SaveContent.ConfigJson(k), SaveContent.Tensors(k));

    private static string ConfigPath(string directory) => Path.Combine(directory, AdapterConfig.FileName);

    private static string WeightsPath(string directory) => Path.Combine(directory, AdapterDirectory.WeightsFileName);

    // The state a crash between the save's two renames leaves: save `next`'s weights beside save `previous`'s
    // config, and `next`'s config in its temporary file.
    private static string CrashBetweenRenames(long previous, long next)
    {
        string directory = ScratchDirectories.New(), elsewhere = ScratchDirectories.New();
        Save(directory, previous);
        Save(elsewhere, next);
        File.Copy(WeightsPath(elsewhere), WeightsPath(directory), overwrite: true);
        File.Copy(ConfigPath(elsewhere), Path.Combine(directory, AtomicSave.TemporaryName(AdapterConfig.FileName, Guid.NewGuid().ToString("N"))));
        return directory;
    }

    [Theory]
    [InlineData(0, 1)] // rank 32 → 64: the mixture would not even load
    [InlineData(2, 4)] // same rank, alpha 24 → 40: the mixture would load silently with the wrong scaling
    public void A_crash_between_the_two_renames_loads_the_complete_new_save(long previous, long next)
    {
        string directory = CrashBetweenRenames(previous, next);
        using var model = new SaveLoopModel();
        model.LoadAdapter(directory);
        var layer = model.LoraLayers().First().Layer;
        Assert.Equal(SaveContent.RankOf(next), layer.Rank);
        Assert.Equal(SaveContent.AlphaOf(next) / SaveContent.RankOf(next), layer.Scaling, 12);
        Assert.Equal(SaveContent.AValue(next), model.NamedLoraParameters().First().Parameter[0, 0].item<float>());

        var (config, weights) = AdapterDirectory.Open(directory);
        using (weights)
            Assert.Equal(SaveContent.AlphaOf(next), config.Alpha);
    }

    [Fact]
    public void A_config_that_is_not_the_weights_and_no_saved_one_is_refused_by_name()
    {
        string directory = ScratchDirectories.New(), elsewhere = ScratchDirectories.New();
        Save(directory, 2);
        Save(elsewhere, 4);
        File.Copy(ConfigPath(elsewhere), ConfigPath(directory), overwrite: true); // alpha 40 beside alpha-24 weights
        using var model = new SaveLoopModel();
        var error = Assert.Throws<LoraFileException>(() => model.LoadAdapter(directory));
        Assert.Contains("is not the config", error.Message);
        Assert.Contains(ConfigPath(directory), error.Message);
        Assert.Empty(model.LoraLayers());
    }

    [Fact]
    public void The_next_save_removes_what_crashed_saves_left_but_not_a_running_save_s_files()
    {
        string directory = ScratchDirectories.New();
        Save(directory, 0);
        // Left by crashed saves: this version's temporaries and lock, and the unlocked temporaries of earlier versions.
        string[] stale =
        [
            Path.Combine(directory, ".adapter_model.safetensors.0123456789abcdef0123456789abcdef.tmp"),
            Path.Combine(directory, ".adapter_config.json.0123456789abcdef0123456789abcdef.tmp"),
            Path.Combine(directory, ".adapter_model.safetensors.0123456789abcdef0123456789abcdef.lock"),
        ];
        foreach (var path in stale)
            File.WriteAllText(path, "left by a crash");
        // A save in progress: its lock is held (as by another process), its temporary file is being written.
        string runningId = Guid.NewGuid().ToString("N");
        string runningLock = Path.Combine(directory, $".adapter_model.safetensors.{runningId}.lock");
        string runningTemporary = Path.Combine(directory, AtomicSave.TemporaryName(AdapterDirectory.WeightsFileName, runningId));
        using (new FileStream(runningLock, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None))
        {
            File.WriteAllText(runningTemporary, "being written");
            Save(directory, 1);
            Assert.All(stale, path => Assert.False(File.Exists(path), $"{path} was left"));
            Assert.True(File.Exists(runningTemporary));
            Assert.True(File.Exists(runningLock));
        }
        // Once that save is gone (its lock released without cleaning up), the next save removes its files too.
        Save(directory, 2);
        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"],
            Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_save_into_a_missing_folder_names_the_folder()
    {
        string folder = Path.Combine(ScratchDirectories.New(), "missing");
        var error = Assert.Throws<DirectoryNotFoundException>(() =>
            SafetensorsWriter.WriteFile(Path.Combine(folder, "model.safetensors"), SaveContent.Tensors(0)));
        Assert.Contains($"the folder '{folder}' does not exist", error.Message);
        Assert.DoesNotContain(".tmp", error.Message);
    }

    [Fact]
    public void A_directory_missing_a_file_or_given_as_a_file_says_which()
    {
        string directory = ScratchDirectories.New();
        Save(directory, 0);
        string file = WeightsPath(directory);
        var notDirectory = Assert.Throws<DirectoryNotFoundException>(() => AdapterDirectory.Open(file));
        Assert.Contains("is a file", notDirectory.Message);
        File.Delete(ConfigPath(directory));
        var missing = Assert.Throws<FileNotFoundException>(() => AdapterDirectory.Open(directory));
        Assert.Contains("has no adapter_config.json", missing.Message);
    }
}
