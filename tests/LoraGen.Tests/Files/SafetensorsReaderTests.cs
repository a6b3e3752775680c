using LoraGen.Files;
using static LoraGen.Tests.Files.HandWrittenSafetensors;

namespace LoraGen.Tests.Files;

public sealed class SafetensorsReaderTests
{
    private static SafetensorsReader Open(byte[] file) => SafetensorsReader.Open(new MemoryStream(file), "test.safetensors");

    private static string Refused(byte[] file) => Assert.Throws<SafetensorsFormatException>(() => Open(file).Dispose()).Message;

    [Fact]
    public void A_hand_assembled_file_reads_back_entries_metadata_and_bytes()
    {
        var file = Assemble(
            """{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""",
            Concat(F32(1.5f, -2f), F16(0.25f, 3f)));
        using var reader = Open(file);
        Assert.Equal(["a", "b"], reader.Tensors.Select(t => t.Name)); // in data order
        Assert.Equal("pt", reader.Metadata["format"]);
        Assert.Equal(F32(1.5f, -2f), reader.ReadBytes("a"));
        Assert.Equal(F16(0.25f, 3f), reader.ReadBytes("b"));
        Assert.Equal(SafetensorsDType.F16, reader.Find("b")!.DType);
    }

    [Theory]
    [InlineData(SafetensorsDType.F64)] [InlineData(SafetensorsDType.F32)] [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)] [InlineData(SafetensorsDType.I64)] [InlineData(SafetensorsDType.I32)]
    [InlineData(SafetensorsDType.I16)] [InlineData(SafetensorsDType.I8)] [InlineData(SafetensorsDType.U8)]
    [InlineData(SafetensorsDType.BOOL)]
    public void Writer_output_reads_back_for_every_dtype(SafetensorsDType dtype)
    {
        var data = Enumerable.Range(0, 6 * dtype.ElementSize()).Select(i => (byte)(dtype == SafetensorsDType.BOOL ? i % 2 : i * 37)).ToArray();
        var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, [new SafetensorsTensor("t", dtype, [2, 3], () => data), new SafetensorsTensor("empty", dtype, [0, 4], () => Array.Empty<byte>())],
            new Dictionary<string, string> { ["format"] = "pt" });
        var file = stream.ToArray();
        Assert.Equal(0, (file.Length - data.Length - 8) % 8); // header padded to 8 bytes
        using var reader = Open(file);
        Assert.Equal(data, reader.ReadBytes("t"));
        Assert.Equal([2L, 3L], reader.Find("t")!.Shape);
        Assert.Equal(dtype, reader.Find("t")!.DType);
        Assert.Empty(reader.ReadBytes("empty"));
    }

    [Fact]
    public void Writer_output_follows_the_specification_read_without_our_reader()
    {
        // Parsed here by hand, per the safetensors format: u64 little-endian header length, a JSON object
        // (dtype, shape, data_offsets relative to the data section; __metadata__ strings), then raw
        // little-endian bytes. Nothing of LoraGen's reader is used.
        float[] weights = [1.5f, -2.25f, 3e-8f, float.MaxValue, 0f, -0f];
        long[] ids = [7, -1, long.MaxValue];
        byte[] weightBytes = weights.SelectMany(BitConverter.GetBytes).ToArray();
        byte[] idBytes = ids.SelectMany(BitConverter.GetBytes).ToArray();
        var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, [new SafetensorsTensor("w", SafetensorsDType.F32, [2, 3], () => weightBytes),
            new SafetensorsTensor("ids", SafetensorsDType.I64, [3], () => idBytes)], new Dictionary<string, string> { ["format"] = "pt" });
        var file = stream.ToArray();

        long headerLength = BitConverter.ToInt64(file, 0);
        Assert.True(BitConverter.IsLittleEndian);
        var header = System.Text.Json.JsonDocument.Parse(file.AsMemory(8, (int)headerLength)).RootElement;
        Assert.Equal("pt", header.GetProperty("__metadata__").GetProperty("format").GetString());
        int dataStart = 8 + (int)headerLength;
        byte[] Tensor(string name, string dtype, long[] shape)
        {
            var entry = header.GetProperty(name);
            Assert.Equal(dtype, entry.GetProperty("dtype").GetString());
            Assert.Equal(shape, entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
            var offsets = entry.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            return file[(dataStart + offsets[0])..(dataStart + offsets[1])];
        }
        Assert.Equal(weightBytes, Tensor("w", "F32", [2, 3]));
        Assert.Equal(idBytes, Tensor("ids", "I64", [3]));
        Assert.Equal(file.Length, dataStart + weightBytes.Length + idBytes.Length); // nothing else in the file
        Assert.Equal(3, header.EnumerateObject().Count());
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 16, "tensor 'a': the key appears twice")]
    [InlineData("""{"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}""", 2, "unknown dtype \"F8\"")]
    [InlineData("""{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}""", 8, "unknown dtype")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12 bytes, but data_offsets [0, 8] span 8")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}""", 8, "shape[0] must be a non-negative integer")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}""", 8, "shape[0] must be a non-negative integer")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", 8, "too large to address")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlap 'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12, "leave a hole")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 8, "cover 4 bytes of data but the file holds 8")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "run past the end of the data section, which holds 4 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "end before they begin")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2]}}""", 8, "needs all of dtype, shape and data_offsets")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}""", 8, "unknown field 'extra'")]
    [InlineData("""{"__metadata__":{"format":1}}""", 0, "the value of 'format' must be a string")]
    [InlineData("""{"__metadata__":[]}""", 0, "must be an object of strings")]
    [InlineData("""[1,2]""", 0, "does not start with '{'")]
    [InlineData("""{"a":""", 0, "is not valid JSON")]
    [InlineData("""{"a":5}""", 0, "tensor 'a': the entry must be an object")]
    public void A_malformed_header_is_refused_naming_the_problem(string header, int dataBytes, string expected)
    {
        var message = Refused(Assemble(header, new byte[dataBytes]));
        Assert.Contains(expected, message);
        Assert.StartsWith("Invalid safetensors file 'test.safetensors'", message);
    }

    [Fact]
    public void Header_length_is_bounded_by_the_file_and_by_100_MB()
    {
        Assert.Contains("shorter than the 8-byte header length", Refused([1, 2, 3]));
        var claimsMore = Assemble("{}", []);
        claimsMore[0] = 200;
        Assert.Contains("the header claims 200 bytes but only 2 follow", Refused(claimsMore));
        var huge = new byte[16];
        BitConverter.TryWriteBytes(huge, 100_000_001UL);
        Assert.Contains("at most 100,000,000 are accepted", Refused(huge));
        var maximum = new byte[16];
        BitConverter.TryWriteBytes(maximum, ulong.MaxValue);
        Assert.Contains("at most 100,000,000", Refused(maximum));
    }

    [Fact]
    public void An_empty_header_object_with_no_data_is_a_valid_empty_file()
    {
        using var reader = Open(Assemble("{}      ", []));
        Assert.Empty(reader.Tensors);
    }
}
