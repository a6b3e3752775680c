namespace LoraGen.Tests.Support;

/// <summary>Passes writes through until <c>failAfterBytes</c>, then fails like a full disk.</summary>
public sealed class FailingStream(Stream inner, long failAfterBytes) : Stream
{
    private long written;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => written;
    public override long Position { get => written; set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        int allowed = (int)Math.Min(buffer.Length, failAfterBytes - written);
        inner.Write(buffer[..allowed]);
        written += allowed;
        if (allowed < buffer.Length)
            throw new IOException("No space left on device (injected).");
    }
}
