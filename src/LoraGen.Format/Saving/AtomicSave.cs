namespace LoraGen.Files;

/// <summary>
/// One save of one or more files in a directory, each replacing its target by a rename so that a reader
/// sees the old content or the new, never a torn file. Every file is written to a hidden temporary file
/// next to its target (<c>.{target}.{id}.tmp</c>) and flushed to disk before any is moved into place.
/// <para>
/// The save holds an exclusive lock on <c>.{first target}.{id}.lock</c> for as long as it runs. That lock
/// is how a later save tells the temporary files of a save that is still running (in this process or
/// another) from those a crashed save left behind: after its own commit, a save deletes every temporary
/// and lock file of its targets whose lock nobody holds. A killed process's locks are released by the
/// operating system, so its leftovers are cleaned by the next save to the same target.
/// </para>
/// </summary>
internal sealed class AtomicSave : IDisposable
{
    private const int LockAttempts = 8;

    private readonly string directory;
    private readonly string id;
    private readonly string[] targets;
    private readonly string lockPath;
    private FileStream? lockFile;
    private readonly List<(string Temporary, string Target)> prepared = [];

    private AtomicSave(string directory, string id, string[] targets, string lockPath, FileStream lockFile)
    {
        this.directory = directory;
        this.id = id;
        this.targets = targets;
        this.lockPath = lockPath;
        this.lockFile = lockFile;
    }

    /// <summary>Starts a save of <paramref name="targetNames"/> (file names) in <paramref name="directory"/>,
    /// which must exist.</summary>
    public static AtomicSave Begin(string directory, params string[] targetNames)
    {
        string full = Path.GetFullPath(directory);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"Cannot save '{Path.Combine(full, targetNames[0])}': the folder '{full}' does not exist.");
        for (int attempt = 1; ; attempt++)
        {
            string id = Guid.NewGuid().ToString("N");
            string lockPath = Path.Combine(full, LockName(targetNames[0], id));
            var lockFile = TryTakeNewLock(lockPath);
            if (lockFile is not null)
                return new AtomicSave(full, id, targetNames, lockPath, lockFile);
            if (attempt == LockAttempts)
                throw new IOException($"Could not take a save lock in '{full}' after {LockAttempts} attempts; " +
                    "another process keeps cleaning this directory. Try the save again.");
        }
    }

    /// <summary>Writes <paramref name="targetName"/>'s new content to its temporary file and flushes it to disk.</summary>
    public void Prepare(string targetName, Action<Stream> write)
    {
        string temporary = Path.Combine(directory, TemporaryName(targetName, id));
        string target = Path.Combine(directory, targetName);
        prepared.Add((temporary, target));
        using var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
        var wrapped = AtomicFile.WrapForTest(file);
        write(wrapped);
        wrapped.Flush();
        file.Flush(flushToDisk: true);
    }

    /// <summary>Moves the prepared files over their targets in the order they were prepared, then cleans up what
    /// crashed saves of the same targets left behind.</summary>
    public void Commit()
    {
        foreach (var (temporary, target) in prepared)
            File.Move(temporary, target, overwrite: true);
        prepared.Clear();
        CleanStale();
    }

    /// <summary>Deletes temporary files that were not committed, and releases and deletes the lock.</summary>
    public void Dispose()
    {
        foreach (var (temporary, _) in prepared)
            TryDelete(temporary);
        prepared.Clear();
        if (lockFile is null)
            return;
        TryDelete(lockPath);
        lockFile.Dispose();
        lockFile = null;
    }

    /// <summary>The hidden temporary file names of <paramref name="targetName"/> in <paramref name="directory"/>
    /// (complete or not), for readers that recover an interrupted save.</summary>
    public static IEnumerable<string> TemporaryFilesOf(string directory, string targetName) =>
        Directory.EnumerateFiles(directory, $".{targetName}.*.tmp");

    internal static string TemporaryName(string targetName, string id) => $".{targetName}.{id}.tmp";

    private static string LockName(string targetName, string id) => $".{targetName}.{id}.lock";

    // Deletes the temporary and lock files of this save's targets that belong to no running save. A lock
    // that cannot be taken is held by a running save; its temporary files are left alone.
    private void CleanStale()
    {
        foreach (string target in targets)
        {
            foreach (string lockName in Directory.EnumerateFiles(directory, $".{target}.*.lock"))
                if (lockName != lockPath)
                    TryDeleteUnlocked(lockName);
            foreach (string temporary in TemporaryFilesOf(directory, target))
                if (OwnerId(temporary, target) is not { } owner || !IsRunning(owner))
                    TryDelete(temporary);
        }
    }

    private bool IsRunning(string ownerId) =>
        ownerId == id || Directory.EnumerateFiles(directory, $".*.{ownerId}.lock").Any(IsLocked);

    private static string? OwnerId(string temporaryPath, string target)
    {
        string name = Path.GetFileName(temporaryPath);
        int start = target.Length + 2, end = name.Length - ".tmp".Length;
        return end > start ? name[start..end] : null;
    }

    // Creates the lock file and locks it. Between the file's creation and its lock another save's cleanup can
    // see it unlocked and delete it; the lock is then on a file no longer in the directory, so it is checked
    // to be there, and a fresh id tried otherwise.
    private static FileStream? TryTakeNewLock(string lockPath)
    {
        FileStream lockFile;
        try
        {
            lockFile = new FileStream(lockPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
        }
        catch (IOException) when (File.Exists(lockPath))
        {
            // Created, but another save's cleanup locked it first and will delete it.
            return null;
        }
        if (File.Exists(lockPath))
            return lockFile;
        lockFile.Dispose();
        return null;
    }

    private static bool IsLocked(string path)
    {
        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None, bufferSize: 1);
            return false;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        catch (IOException)
        {
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }

    // Deletes a lock file nobody holds, holding it while deleting so a save cannot take it in between.
    private static void TryDeleteUnlocked(string path)
    {
        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None, bufferSize: 1, FileOptions.DeleteOnClose);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a leftover hidden file is never read as the target, and the next save cleans it.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
