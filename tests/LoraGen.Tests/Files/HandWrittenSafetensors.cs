using System.Buffers.Binary;
using System.Text;

namespace LoraGen.Tests.Files;

/// <summary>
/// Assembles safetensors files byte by byte from the specification, independently of LoraGen's writer:
/// an unsigned 64-bit little-endian header length, the UTF-8 JSON header text exactly as given, then the
/// data bytes.
/// </summary>
public static class HandWrittenSafetensors
{
    public static byte[] Assemble(string headerJson, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var file = new byte[8 + header.Length + data.Length];
        ulong length = (ulong)header.Length;
        for (int i = 0; i < 8; i++)
            file[i] = (byte)(length >> (8 * i)); // little-endian, least significant byte first
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    public static byte[] F32(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * 4), BitConverter.SingleToInt32Bits(values[i]));
        return bytes;
    }

    public static byte[] F16(params float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(i * 2), BitConverter.HalfToInt16Bits((Half)values[i]));
        return bytes;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(part => part).ToArray();
}
