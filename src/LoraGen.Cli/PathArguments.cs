using LoraGen.Files;

namespace LoraGen.Cli;

/// <summary>
/// Checks of the paths on a command line, made before any file is read, so a merge never runs to the end to fail
/// on its output. Each returns null, or the problem in one sentence that names the path as the user wrote it
/// (never an internal temporary file) and says what to give instead.
/// </summary>
internal static class PathArguments
{
    private static readonly string AdapterFiles = $"{AdapterConfig.FileName} and {Files.AdapterDirectory.WeightsFileName}";

    /// <summary>An adapter directory: a directory, holding both adapter files. <paramref name="option"/> is the
    /// option that gave it, or null for a positional argument.</summary>
    public static string? AdapterDirectory(string path, string? option)
    {
        string named = option is null ? $"'{path}'" : $"{option} '{path}'";
        if (File.Exists(path))
        {
            // Someone who gives adapter_model.safetensors itself means the directory it is in.
            string folder = Path.GetDirectoryName(path) is { Length: > 0 } parent ? parent : ".";
            bool adapterFile = Path.GetFileName(path) is AdapterConfig.FileName or Files.AdapterDirectory.WeightsFileName;
            return $"{named} is a file, not a directory: an adapter is a directory holding {AdapterFiles}" +
                (adapterFile ? $"; give '{folder}', the directory it is in." : ".");
        }
        if (!Directory.Exists(path))
            return option is null
                ? $"Adapter directory '{path}' does not exist. Give the directory that holds {AdapterFiles}."
                : $"{named} does not exist. Give the adapter directory that holds {AdapterFiles}.";
        if (!HasAdapterFile(path) && NamedAdapters(path) is { Count: > 0 } names)
            return $"{named} holds no adapter of its own, but {Count(names.Count, "named adapter")} in sub-folders ({string.Join(", ", names)}), " +
                $"as a save of several adapters writes them; give one by its folder, e.g. {option ?? "loragen inspect"} '{Path.Combine(path, names[0])}'" +
                (option is null ? "." : $" (repeat {option} to merge several).");
        return MissingAdapterFile(path, named);
    }

    /// <summary>The directory for <c>loragen inspect</c>: an adapter directory, one whose sub-folders are adapters
    /// (<c>dir/&lt;name&gt;/</c>, as a save of named adapters writes them), or both. Null when it is one of these.</summary>
    public static string? AdapterCollection(string path)
    {
        if (File.Exists(path) || !Directory.Exists(path) || HasAdapterFile(path))
            return AdapterDirectory(path, option: null);
        return NamedAdapters(path).Count > 0
            ? null
            : $"'{path}' has no {AdapterConfig.FileName}: an adapter directory holds {AdapterFiles}, as SaveAdapter and PEFT's save_pretrained " +
                "write them (adapters other than \"default\" in sub-folders <name>/), and no sub-folder of it is one either.";
    }

    /// <summary>Whether a directory holds either adapter file itself (the adapter PEFT and SaveAdapter call "default").</summary>
    public static bool HasAdapterFile(string directory) =>
        File.Exists(Path.Combine(directory, AdapterConfig.FileName)) || File.Exists(Path.Combine(directory, Files.AdapterDirectory.WeightsFileName));

    /// <summary>The sub-folders of <paramref name="directory"/> that hold an adapter file: the adapters a save of
    /// several adapters writes to <c>dir/&lt;name&gt;/</c>, and <c>LoadAdapter(dir, name)</c> reads. Sorted by name.</summary>
    public static IReadOnlyList<string> NamedAdapters(string directory)
    {
        if (!Directory.Exists(directory))
            return [];
        return Directory.EnumerateDirectories(directory)
            .Where(HasAdapterFile)
            .Select(sub => Path.GetFileName(sub))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Null when both adapter files are there; else which is missing.</summary>
    public static string? MissingAdapterFile(string path, string named)
    {
        foreach (var file in (string[])[AdapterConfig.FileName, Files.AdapterDirectory.WeightsFileName])
            if (!File.Exists(Path.Combine(path, file)))
                return $"{named} has no {file}: an adapter directory holds {AdapterFiles}, as SaveAdapter and PEFT's save_pretrained write them.";
        return null;
    }

    private static string Count(int count, string noun) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{count} {noun}{(count == 1 ? "" : "s")}");

    /// <summary>A file to read, such as the base checkpoint.</summary>
    public static string? InputFile(string path, string option, string expected)
    {
        if (Directory.Exists(path))
            return $"{option} '{path}' is a directory, not a file: give {expected}.";
        return File.Exists(path) ? null : $"{option} '{path}' does not exist: give {expected}.";
    }

    /// <summary>A file to write: not a directory, in a folder that exists and takes new files (the output is first
    /// written to a temporary file beside it, then renamed).</summary>
    public static string? OutputFile(string path, string option)
    {
        if (Directory.Exists(path) || path.EndsWith(Path.DirectorySeparatorChar) || path.EndsWith(Path.AltDirectorySeparatorChar))
            return $"{option} '{path}' is a directory; give the file to write, e.g. '{Path.Combine(path, "model.safetensors")}'.";
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string shown = Path.GetDirectoryName(path) is { Length: > 0 } given ? given : ".";
        if (File.Exists(folder))
            return $"{option} '{path}': '{shown}' is a file, not a folder.";
        if (!Directory.Exists(folder))
            return $"{option} '{path}': the folder '{shown}' does not exist; create it first (mkdir -p '{shown}'), or choose another {option}.";
        return Unwritable(folder) is { } reason
            ? $"{option} '{path}': cannot create files in '{shown}' ({reason}); choose a folder you can write to."
            : null;
    }

    /// <summary>The merge's output must not be one of its inputs. The base checkpoint may be replaced on purpose
    /// (<paramref name="force"/>); the adapters' own files never: a checkpoint written over them destroys the adapter.</summary>
    public static string? MergeOutputIsNotAnInput(string output, string basePath, IEnumerable<string> adapterDirectories, bool force)
    {
        foreach (var adapterDirectory in adapterDirectories)
            foreach (var file in (string[])[Files.AdapterDirectory.WeightsFileName, AdapterConfig.FileName])
                if (FileIdentity.SameFile(output, Path.Combine(adapterDirectory, file)))
                    return $"--out '{output}' is the adapter's own {file}; writing the merged checkpoint there would destroy the adapter. Give another --out.";
        if (!force && FileIdentity.SameFile(output, basePath))
            return $"--out '{output}' and --base '{basePath}' are the same file: the merge would replace the base checkpoint it reads. " +
                "Give another --out, or add --force to replace the base checkpoint.";
        return null;
    }

    // Creates and at once deletes an empty hidden file: the only sure test of "can I create files here"
    // (permissions, read-only mounts, ACLs).
    private static string? Unwritable(string folder)
    {
        string probe = Path.Combine(folder, $".loragen-{Guid.NewGuid():N}.probe");
        try
        {
            using var file = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return "permission denied";
        }
        catch (IOException failure)
        {
            // The system's words without the probe's name, which is ours, not the user's:
            // "Read-only file system : '…'" → "read-only file system".
            string reason = failure.Message.Replace($"'{probe}'", "", StringComparison.Ordinal).Trim(' ', ':', '.');
            return reason.Length == 0 ? "the system refused" : char.ToLowerInvariant(reason[0]) + reason[1..];
        }
    }
}
