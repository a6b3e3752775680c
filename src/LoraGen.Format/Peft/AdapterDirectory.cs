using System.Security.Cryptography;

namespace LoraGen.Files;

/// <summary>
/// The two files of an adapter directory (<c>adapter_config.json</c> and <c>adapter_model.safetensors</c>),
/// written and read as one pair.
/// <para>
/// Two files cannot be replaced by one atomic step, so the weights file records, in its metadata, the
/// SHA-256 of the config saved with it (<see cref="ConfigHashKey"/>). A save prepares both files, moves the
/// weights into place, then the config. A crash between the two moves leaves the new weights beside the old
/// config and the new config still in its flushed temporary file; <see cref="Open"/> sees that the config does
/// not belong to the weights and reads the temporary file whose hash does, so a reader gets the complete new
/// adapter. At every other instant the two files on disk are the previous pair or the new one.
/// </para>
/// </summary>
public static class AdapterDirectory
{
    /// <summary>The weights file's metadata key holding the hex SHA-256 of the config saved with it.</summary>
    public const string ConfigHashKey = "loragen.config_sha256";

    /// <summary>The weights file inside an adapter directory.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>
    /// Saves an adapter's config and weights into <paramref name="directory"/> (created if needed) so that,
    /// after a crash at any instant, <see cref="Open"/> reads the complete previous adapter or the complete new one.
    /// </summary>
    public static void Write(string directory, byte[] configJson, IReadOnlyList<SafetensorsTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(configJson);
        ArgumentNullException.ThrowIfNull(tensors);
        var metadata = new Dictionary<string, string> { ["format"] = "pt", [ConfigHashKey] = Hash(configJson) };
        Directory.CreateDirectory(directory);
        using var save = AtomicSave.Begin(directory, WeightsFileName, AdapterConfig.FileName);
        save.Prepare(WeightsFileName, stream => SafetensorsWriter.Write(stream, tensors, metadata));
        save.Prepare(AdapterConfig.FileName, stream => stream.Write(configJson));
        // Weights first: they name their config by hash, so Open can find the new config in its temporary
        // file if the process dies before the second move.
        save.Commit();
    }

    /// <summary>
    /// Opens an adapter directory's config and weights as the pair they were saved as. A directory from PEFT or
    /// any other writer (weights without <see cref="ConfigHashKey"/>) is read as it is.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist (or is a file).</exception>
    /// <exception cref="FileNotFoundException">One of the two files is missing.</exception>
    /// <exception cref="LoraFileException">A file is malformed, or the config is not the one the weights were
    /// saved with and no saved config matches them.</exception>
    public static (AdapterConfig Config, SafetensorsReader Weights) Open(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            throw File.Exists(directory)
                ? new DirectoryNotFoundException($"'{directory}' is a file; an adapter is a directory holding {AdapterConfig.FileName} and {WeightsFileName}.")
                : new DirectoryNotFoundException($"Adapter directory '{directory}' does not exist.");
        string configPath = Path.Combine(directory, AdapterConfig.FileName);
        string weightsPath = Path.Combine(directory, WeightsFileName);
        RequireFile(configPath, directory);
        RequireFile(weightsPath, directory);
        // A save running in another process can replace the config between our two reads; the pair is then
        // read again (a crash, unlike a running save, leaves the matching config in place for good).
        for (int attempt = 1; ; attempt++)
        {
            byte[] configJson = File.ReadAllBytes(configPath);
            var config = AdapterConfig.Parse(configJson, configPath);
            var weights = SafetensorsReader.Open(weightsPath);
            try
            {
                if (weights.Metadata.TryGetValue(ConfigHashKey, out var savedHash) && Hash(configJson) != savedHash)
                {
                    var (savedJson, source) = FindSavedConfig(directory, savedHash, weightsPath);
                    config = AdapterConfig.Parse(savedJson, source);
                }
                return (config, weights);
            }
            catch (LoraFileException) when (attempt < ReadAttempts)
            {
                weights.Dispose();
                Thread.Sleep(50);
            }
            catch
            {
                weights.Dispose();
                throw;
            }
        }
    }

    private const int ReadAttempts = 3;

    // The config a crash left in its temporary file, or a clear error when there is none.
    private static (byte[] Json, string Path) FindSavedConfig(string directory, string wantedHash, string weightsPath)
    {
        foreach (string temporary in AtomicSave.TemporaryFilesOf(directory, AdapterConfig.FileName))
        {
            byte[] json;
            try
            {
                json = File.ReadAllBytes(temporary);
            }
            catch (IOException)
            {
                continue; // Removed by a save that just completed, or still being written.
            }
            if (Hash(json) == wantedHash)
                return (json, temporary);
        }
        throw new LoraFileException(
            $"'{Path.Combine(directory, AdapterConfig.FileName)}' is not the config '{weightsPath}' was saved with " +
            $"(the weights name a config with SHA-256 {wantedHash}), and no such config is left in the directory. " +
            "One of the two files was replaced by something other than a LoraGen save; save the adapter again.");
    }

    private static void RequireFile(string path, string directory)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"Adapter directory '{directory}' has no {Path.GetFileName(path)}; an adapter directory holds " +
                $"{AdapterConfig.FileName} and {WeightsFileName}.", path);
    }

    private static string Hash(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
