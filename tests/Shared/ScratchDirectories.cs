namespace LoraGen.TestSupport;

/// <summary>
/// Scratch folders for tests. All of one test process's folders live under one run folder in the temp directory,
/// deleted when the process exits, so test runs do not pile up folders (they once filled a disk).
/// </summary>
internal static class ScratchDirectories
{
    private static readonly Lazy<string> RunRoot = new(CreateRunRoot);

    /// <summary>A new, empty folder.</summary>
    public static string New()
    {
        var path = NewPath();
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>A path for a folder that does not exist yet (for code that must create it).</summary>
    public static string NewPath(string prefix = "") => Path.Combine(RunRoot.Value, prefix + Guid.NewGuid().ToString("N"));

    private static string CreateRunRoot()
    {
        var root = Path.Combine(Path.GetTempPath(), "loragen-tests", $"run-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => DeleteQuietly(root);
        return root;
    }

    // At exit a file may still be open (a test that failed midway): what cannot be deleted stays, the run goes on.
    private static void DeleteQuietly(string root)
    {
        try
        {
            DeleteTree(new DirectoryInfo(root));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    // Directory.Delete(recursive) can follow a link to a folder; tests make such links (one points at its own
    // parent), so a link is removed as itself and never entered.
    private static void DeleteTree(DirectoryInfo folder)
    {
        foreach (var entry in folder.EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo child && child.LinkTarget is null)
                DeleteTree(child);
            else
                entry.Delete();
        }
        folder.Delete();
    }
}
