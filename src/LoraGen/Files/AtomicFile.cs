namespace LoraGen.Files;

/// <summary>
/// Replaces a file so that a reader sees the old content or the new, never a mix: the content goes to
/// a temporary file in the same directory (same file system, so the move is a rename), is flushed to
/// disk, and is then moved over the target. A failure before the move deletes the temporary file and
/// leaves the target as it was.
/// </summary>
internal static class AtomicFile
{
    // Test seam: wraps the temporary file's stream (e.g. to fail after N bytes). Async-local, so a test
    // that sets it affects only its own calls, not tests running in parallel.
    private static readonly AsyncLocal<Func<Stream, Stream>?> StreamWrapper = new();

    /// <summary>Sets a wrapper for the streams this flow writes through until the result is disposed.</summary>
    internal static IDisposable WrapStreamsForTest(Func<Stream, Stream> wrap)
    {
        var previous = StreamWrapper.Value;
        StreamWrapper.Value = wrap;
        return new Reset(() => StreamWrapper.Value = previous);
    }

    /// <summary>Writes <paramref name="path"/> atomically with <paramref name="write"/>.</summary>
    public static void Write(string path, Action<Stream> write) => Commit(Prepare(path, write));

    /// <summary>Writes the content to a temporary file next to <paramref name="path"/> and flushes it to disk;
    /// <see cref="Commit"/> then moves it into place. Lets a caller prepare several files before replacing any.</summary>
    public static PreparedFile Prepare(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                var wrapped = StreamWrapper.Value?.Invoke(file) ?? file;
                write(wrapped);
                wrapped.Flush();
                file.Flush(flushToDisk: true);
            }
            return new PreparedFile(temporary, full);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>Moves prepared files into place, in order.</summary>
    public static void Commit(params PreparedFile[] files)
    {
        try
        {
            foreach (var file in files)
                File.Move(file.Temporary, file.Target, overwrite: true);
        }
        finally
        {
            foreach (var file in files)
                TryDelete(file.Temporary);
        }
    }

    /// <summary>Deletes prepared files that will not be committed.</summary>
    public static void Discard(IEnumerable<PreparedFile> files)
    {
        foreach (var file in files)
            TryDelete(file.Temporary);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a leftover hidden .tmp file is harmless and never read.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>A flushed temporary file and where it goes.</summary>
    internal sealed record PreparedFile(string Temporary, string Target);

    private sealed class Reset(Action reset) : IDisposable
    {
        public void Dispose() => reset();
    }
}
