namespace LoraGen.Files;

/// <summary>
/// Replaces a single file so that a reader sees the old content or the new, never a mix (see
/// <see cref="AtomicSave"/>, which also saves several files together). A failure before the move deletes the
/// temporary file and leaves the target as it was; temporary files of crashed saves are cleaned by the next
/// successful save to the same target.
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

    /// <summary>The stream to write a temporary file through: the file itself, unless a test wraps it.</summary>
    internal static Stream WrapForTest(Stream file) => StreamWrapper.Value?.Invoke(file) ?? file;

    /// <summary>Writes <paramref name="path"/> atomically with <paramref name="write"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        using var save = AtomicSave.Begin(Path.GetDirectoryName(full)!, Path.GetFileName(full));
        save.Prepare(Path.GetFileName(full), write);
        save.Commit();
    }

    private sealed class Reset(Action reset) : IDisposable
    {
        public void Dispose() => reset();
    }
}
