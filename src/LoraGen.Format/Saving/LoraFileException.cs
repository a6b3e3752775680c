namespace LoraGen;

/// <summary>
/// A file LoraGen was asked to read cannot be used: an adapter directory, an adapter config, a
/// checkpoint or a safetensors file that is malformed, or whose keys, shapes or dtypes do not match
/// the model. Thrown before anything in the model is changed. The message names the file, the key and
/// the numbers. Plain I/O failures (a missing file, no permission) stay the usual <see cref="IOException"/>s.
/// </summary>
public class LoraFileException : IOException
{
    /// <summary>Creates the exception with a message that names the problem.</summary>
    public LoraFileException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message that names the problem, and its cause.</summary>
    public LoraFileException(string message, Exception? inner)
        : base(message, inner)
    {
    }
}

/// <summary>
/// A safetensors file breaks the format's rules: a header that is too long or not a JSON object, an
/// unknown dtype, a shape that does not match its byte range, ranges that overlap, leave holes or run
/// past the end, a duplicate key. <see cref="Key"/> names the tensor when the problem is in one.
/// </summary>
public sealed class SafetensorsFormatException : LoraFileException
{
    /// <summary>Creates the exception for <paramref name="key"/> (or the file as a whole when null) in the
    /// file named <paramref name="source"/>.</summary>
    public SafetensorsFormatException(string source, string? key, string problem, Exception? inner = null)
        : base(key is null
            ? $"Invalid safetensors file '{source}': {problem}"
            : $"Invalid safetensors file '{source}': tensor '{key}': {problem}", inner)
    {
        Source = source;
        Key = key;
    }

    /// <summary>The file (or stream) the problem is in.</summary>
    public new string Source { get; }

    /// <summary>The tensor the problem is in, or null when it is in the file as a whole.</summary>
    public string? Key { get; }
}
