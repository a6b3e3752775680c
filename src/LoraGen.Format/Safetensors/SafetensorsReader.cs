using System.Buffers.Binary;
using System.Text.Json;

namespace LoraGen.Files;

/// <summary>
/// A strict reader of the safetensors format (8-byte little-endian header length, a JSON header, then
/// the raw little-endian data). <see cref="Open(Stream, string, bool)"/> checks the whole header
/// against the file before anything is read, and refuses, with a <see cref="SafetensorsFormatException"/>
/// naming the problem and the key: a header longer than <see cref="MaxHeaderBytes"/> or than the file,
/// a header that is not a JSON object, a duplicate key, an unknown dtype, a negative or non-integer
/// size, a shape whose byte size differs from its range (overflow checked), ranges that run past the
/// data, overlap, leave holes or leave bytes over (as the reference implementation does), and
/// <c>__metadata__</c> that is not string to string. Nothing is allocated beyond what the file holds.
/// </summary>
public sealed class SafetensorsReader : IDisposable, ITensorSource
{
    /// <summary>The largest header accepted: 100 MB, as the reference implementation.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private readonly Stream stream;
    private readonly bool leaveOpen;
    private readonly Dictionary<string, SafetensorsTensorInfo> byName;

    private SafetensorsReader(Stream stream, bool leaveOpen, string source, long dataStart,
        List<SafetensorsTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        this.stream = stream;
        this.leaveOpen = leaveOpen;
        Source = source;
        DataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
        byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file name (or the name given for a stream), used in error messages.</summary>
    public string Source { get; }

    /// <summary>The tensors, in the order of their data.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    IEnumerable<SafetensorsTensorInfo> ITensorSource.Tensors => Tensors;

    /// <summary>The header's <c>__metadata__</c> (empty when there is none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Where the data section starts in the file: 8 + header length.</summary>
    public long DataStart { get; }

    /// <summary>The entry for <paramref name="name"/>, or null.</summary>
    public SafetensorsTensorInfo? Find(string name) => byName.GetValueOrDefault(name);

    /// <summary>Opens and checks a file. The file stays open until <see cref="Dispose"/>.</summary>
    /// <exception cref="SafetensorsFormatException">The file breaks the format.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static SafetensorsReader Open(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16, FileOptions.RandomAccess);
        try
        {
            return Open(file, path, leaveOpen: false);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Reads and checks the header of a seekable stream positioned anywhere; <paramref name="source"/>
    /// names it in error messages.</summary>
    /// <exception cref="SafetensorsFormatException">The stream breaks the format.</exception>
    public static SafetensorsReader Open(Stream stream, string source, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(source);
        if (!stream.CanSeek || !stream.CanRead)
            throw new ArgumentException("The stream must be readable and seekable.", nameof(stream));

        long length = stream.Length;
        if (length < 8)
            throw new SafetensorsFormatException(source, null,
                $"the file is {length} bytes long, shorter than the 8-byte header length that starts every safetensors file.");
        Span<byte> prefix = stackalloc byte[8];
        stream.Position = 0;
        ReadExactly(stream, prefix, source);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
            throw new SafetensorsFormatException(source, null,
                $"the header claims {headerLength:N0} bytes; at most {MaxHeaderBytes:N0} are accepted.");
        if ((long)headerLength > length - 8)
            throw new SafetensorsFormatException(source, null,
                $"the header claims {headerLength:N0} bytes but only {length - 8:N0} follow the length field: the file is truncated or not safetensors.");

        var header = new byte[headerLength];
        ReadExactly(stream, header, source);
        long dataStart = 8 + (long)headerLength;
        var (tensors, metadata) = ParseHeader(header, length - dataStart, source);
        return new SafetensorsReader(stream, leaveOpen, source, dataStart, tensors, metadata);
    }

    /// <summary>The raw little-endian bytes of a tensor.</summary>
    /// <exception cref="SafetensorsFormatException">The tensor is larger than one .NET array can hold, or the
    /// file shrank since it was opened.</exception>
    public byte[] ReadBytes(SafetensorsTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.ByteLength > Array.MaxLength)
            throw new SafetensorsFormatException(Source, tensor.Name,
                $"it holds {tensor.ByteLength:N0} bytes; tensors over {Array.MaxLength:N0} bytes are not supported.");
        var bytes = new byte[tensor.ByteLength];
        ReadInto(tensor, bytes);
        return bytes;
    }

    /// <summary>Reads a tensor's raw little-endian bytes into <paramref name="destination"/> (e.g. a tensor's own
    /// memory, so no managed copy is made).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is not the tensor's byte length.</exception>
    /// <exception cref="SafetensorsFormatException">The file shrank since it was opened.</exception>
    public void ReadInto(SafetensorsTensorInfo tensor, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (destination.Length != tensor.ByteLength)
            throw new ArgumentException($"'{tensor.Name}' has {tensor.ByteLength:N0} bytes; the destination has {destination.Length:N0}.", nameof(destination));
        stream.Position = DataStart + tensor.Begin;
        ReadExactly(stream, destination, Source);
    }

    /// <summary>The raw bytes of the tensor named <paramref name="name"/>.</summary>
    public byte[] ReadBytes(string name) =>
        ReadBytes(Find(name) ?? throw new KeyNotFoundException($"'{Source}' holds no tensor '{name}'."));

    /// <inheritdoc />
    public void Dispose()
    {
        if (!leaveOpen)
            stream.Dispose();
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string source)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException error)
        {
            throw new SafetensorsFormatException(source, null, "the file ended before the bytes its header describes.", error);
        }
    }

    private static (List<SafetensorsTensorInfo>, Dictionary<string, string>) ParseHeader(byte[] header, long dataLength, string source)
    {
        // The reference implementation requires the object to start at the first byte (no leading padding).
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new SafetensorsFormatException(source, null, "the header does not start with '{': it is not a JSON object.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException error)
        {
            throw new SafetensorsFormatException(source, null, $"the header is not valid JSON ({error.Message}).", error);
        }

        using (document)
        {
            try
            {
                return ReadDocument(document.RootElement, dataLength, source);
            }
            catch (InvalidOperationException error)
            {
                // JsonDocument checks strings lazily: a name or value that is not valid UTF-8 surfaces here.
                throw new SafetensorsFormatException(source, null, $"the header is not valid UTF-8 JSON ({error.Message}).", error);
            }
        }
    }

    private static (List<SafetensorsTensorInfo>, Dictionary<string, string>) ReadDocument(JsonElement root, long dataLength, string source)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(source, null, "the header is not a JSON object.");
        var tensors = new List<SafetensorsTensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!seen.Add(property.Name))
                throw new SafetensorsFormatException(source, property.Name, "the key appears twice in the header.");
            if (property.Name == MetadataKey)
                ReadMetadata(property.Value, metadata, source);
            else
                tensors.Add(ReadEntry(property.Name, property.Value, dataLength, source));
        }
        CheckLayout(tensors, dataLength, source);
        return (tensors, metadata);
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(source, MetadataKey, $"must be an object of strings, but it is {Describe(value)}.");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsFormatException(source, MetadataKey,
                    $"the value of '{entry.Name}' must be a string, but it is {Describe(entry.Value)}.");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new SafetensorsFormatException(source, MetadataKey, $"'{entry.Name}' appears twice.");
        }
    }

    private static SafetensorsTensorInfo ReadEntry(string name, JsonElement value, long dataLength, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(source, name, $"the entry must be an object with dtype, shape and data_offsets, but it is {Describe(value)}.");
        JsonElement? dtypeValue = null, shapeValue = null, offsetsValue = null;
        foreach (var field in value.EnumerateObject())
        {
            ref JsonElement? slot = ref dtypeValue;
            switch (field.Name)
            {
                case "dtype": slot = ref dtypeValue; break;
                case "shape": slot = ref shapeValue; break;
                case "data_offsets": slot = ref offsetsValue; break;
                default:
                    throw new SafetensorsFormatException(source, name, $"unknown field '{field.Name}' (expected dtype, shape and data_offsets).");
            }
            if (slot is not null)
                throw new SafetensorsFormatException(source, name, $"the field '{field.Name}' appears twice.");
            slot = field.Value;
        }
        if (dtypeValue is not { } dtypeElement || shapeValue is not { } shapeElement || offsetsValue is not { } offsetsElement)
            throw new SafetensorsFormatException(source, name, "the entry needs all of dtype, shape and data_offsets.");

        if (dtypeElement.ValueKind != JsonValueKind.String || !SafetensorsDTypes.TryParse(dtypeElement.GetString(), out var dtype))
            throw new SafetensorsFormatException(source, name,
                $"unknown dtype {Describe(dtypeElement)}; supported: {string.Join(", ", Enum.GetNames<SafetensorsDType>())}.");
        var shape = ReadIntegers(shapeElement, "shape", name, source);
        var offsets = ReadIntegers(offsetsElement, "data_offsets", name, source);
        if (offsets.Length != 2)
            throw new SafetensorsFormatException(source, name, $"data_offsets must hold two numbers [begin, end], but it holds {offsets.Length}.");
        long begin = offsets[0], end = offsets[1];
        if (end < begin)
            throw new SafetensorsFormatException(source, name, $"data_offsets [{begin}, {end}] end before they begin.");
        if (end > dataLength)
            throw new SafetensorsFormatException(source, name,
                $"data_offsets [{begin}, {end}] run past the end of the data section, which holds {dataLength:N0} bytes.");

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (product, size) => product * size) * dtype.ElementSize());
        }
        catch (OverflowException error)
        {
            throw new SafetensorsFormatException(source, name, $"shape [{string.Join(", ", shape)}] of {dtype} is too large to address.", error);
        }
        if (expected != end - begin)
            throw new SafetensorsFormatException(source, name,
                $"shape [{string.Join(", ", shape)}] of {dtype} needs {expected:N0} bytes, but data_offsets [{begin}, {end}] span {end - begin:N0}.");
        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private static long[] ReadIntegers(JsonElement value, string field, string name, string source)
    {
        if (value.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(source, name, $"{field} must be an array of non-negative integers, but it is {Describe(value)}.");
        var numbers = new long[value.GetArrayLength()];
        int i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long number) || number < 0)
                throw new SafetensorsFormatException(source, name,
                    $"{field}[{i}] must be a non-negative integer that fits in 64 bits, but it is {Describe(item)}.");
            numbers[i++] = number;
        }
        return numbers;
    }

    // Like the reference implementation: sorted by offset, the ranges must tile the data section exactly,
    // so no two tensors share bytes and no byte is unaccounted for.
    private static void CheckLayout(List<SafetensorsTensorInfo> tensors, long dataLength, string source)
    {
        tensors.Sort((x, y) => x.Begin != y.Begin ? x.Begin.CompareTo(y.Begin) : x.End.CompareTo(y.End));
        long next = 0;
        SafetensorsTensorInfo? previous = null;
        foreach (var tensor in tensors)
        {
            if (tensor.Begin < next)
                throw new SafetensorsFormatException(source, tensor.Name,
                    $"data_offsets [{tensor.Begin}, {tensor.End}] overlap '{previous!.Name}' [{previous.Begin}, {previous.End}].");
            if (tensor.Begin > next)
                throw new SafetensorsFormatException(source, tensor.Name,
                    $"data_offsets [{tensor.Begin}, {tensor.End}] leave a hole: the previous tensor ends at {next}.");
            next = tensor.End;
            previous = tensor;
        }
        if (next != dataLength)
            throw new SafetensorsFormatException(source, null,
                $"the tensors cover {next:N0} bytes of data but the file holds {dataLength:N0} after the header.");
    }

    private static string Describe(JsonElement value)
    {
        string text = value.GetRawText();
        return text.Length <= 40 ? text : text[..40] + "…";
    }
}
