using System.Buffers.Binary;
using LoraGen.Build;

namespace LoraGen.Tests.Native;

// The ELF logic of src/LoraGen/build/PatchLibTorchSharp.cs (compiled into this project), on the real library.
public class LibTorchSharpElfPatchTests
{
    [Fact]
    public void Shipped_library_needs_GLIBCXX_3_4_32_not_weak()
    {
        byte[] elf = NuGetCacheLibrary.Read();

        Assert.Equal(GlibcxxRequirement.Required, LibTorchSharpElfPatch.Inspect(elf));
        Assert.True(LibTorchSharpElfPatch.NeedsWeakGlibcxx(elf));
    }

    [Fact]
    public void Patch_sets_only_the_weak_flag_of_that_requirement()
    {
        byte[] original = NuGetCacheLibrary.Read();
        byte[] patched = (byte[])original.Clone();

        Assert.True(LibTorchSharpElfPatch.Patch(patched));

        Assert.Equal(GlibcxxRequirement.Weak, LibTorchSharpElfPatch.Inspect(patched));
        Assert.False(LibTorchSharpElfPatch.NeedsWeakGlibcxx(patched));
        int changed = Assert.Single(Enumerable.Range(0, original.Length), i => original[i] != patched[i]);
        Assert.Equal(original[changed] | 2, patched[changed]);                // VER_FLG_WEAK, low byte of vna_flags
        Assert.InRange(changed, VersionNeedsSection(original).Start, VersionNeedsSection(original).End - 1);
    }

    [Fact]
    public void Patching_twice_changes_nothing_more()
    {
        byte[] once = NuGetCacheLibrary.Read();
        LibTorchSharpElfPatch.Patch(once);
        byte[] twice = (byte[])once.Clone();

        Assert.False(LibTorchSharpElfPatch.Patch(twice));
        Assert.Equal(once, twice);
    }

    [Fact]
    public void Library_without_the_requirement_is_not_applicable()
    {
        if (!OperatingSystem.IsLinux() || LibTorchSharpElfPatch.FindSystemLibStdCxx() is not { } libstdcxx)
            return;
        byte[] elf = File.ReadAllBytes(libstdcxx);   // needs glibc and libgcc versions, never GLIBCXX ones
        byte[] copy = (byte[])elf.Clone();

        Assert.Equal(GlibcxxRequirement.None, LibTorchSharpElfPatch.Inspect(elf));
        Assert.False(LibTorchSharpElfPatch.Patch(copy));
        Assert.Equal(elf, copy);
    }

    [Fact]
    public void Reads_the_versions_libstdcxx_defines()
    {
        if (!OperatingSystem.IsLinux() || LibTorchSharpElfPatch.FindSystemLibStdCxx() is not { } libstdcxx)
            return;

        Assert.True(LibTorchSharpElfPatch.DefinesVersion(libstdcxx, "GLIBCXX_3.4"));
        Assert.True(LibTorchSharpElfPatch.DefinesVersion(libstdcxx, "CXXABI_1.3"));
        Assert.False(LibTorchSharpElfPatch.DefinesVersion(libstdcxx, "GLIBCXX_99.0"));
    }

    public static TheoryData<byte[]> NotElf => new()
    {
        Array.Empty<byte>(),
        "hello, this is not a shared library at all; it is long enough to pass a size check"u8.ToArray(),
        new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' },
    };

    [Theory]
    [MemberData(nameof(NotElf))]
    public void Non_ELF_input_is_rejected_with_a_reason(byte[] data)
    {
        var e = Assert.Throws<InvalidDataException>(() => LibTorchSharpElfPatch.Inspect(data));
        Assert.Contains("not an ELF file", e.Message);
        Assert.Throws<InvalidDataException>(() => LibTorchSharpElfPatch.Patch(data));
    }

    [Theory]
    [InlineData(1, 1)]   // 32-bit
    [InlineData(2, 2)]   // big-endian
    public void Other_ELF_flavours_are_rejected_with_a_reason(byte elfClass, byte dataEncoding)
    {
        byte[] elf = NuGetCacheLibrary.Read();
        elf[4] = elfClass;
        elf[5] = dataEncoding;

        var e = Assert.Throws<InvalidDataException>(() => LibTorchSharpElfPatch.Inspect(elf));
        Assert.Contains("64-bit little-endian", e.Message);
    }

    [Fact]
    public void Truncated_library_gives_a_reason_never_a_crash()
    {
        byte[] elf = NuGetCacheLibrary.Read();
        var (start, end) = VersionNeedsSection(elf);
        int[] lengths = [16, 63, 64, 100, 500, 4096, start, start + 10, (start + end) / 2, end - 1];
        foreach (int length in lengths)
        {
            byte[] cut = elf.AsSpan(0, length).ToArray();
            var e = Assert.Throws<InvalidDataException>(() => LibTorchSharpElfPatch.Inspect(cut));
            Assert.False(string.IsNullOrWhiteSpace(e.Message));
        }
    }

    [Fact]
    public void Corrupt_headers_give_a_reason_or_an_answer_never_a_crash()
    {
        byte[] original = NuGetCacheLibrary.Read();
        var (start, end) = VersionNeedsSection(original);
        var random = new Random(1234);
        for (int trial = 0; trial < 2000; trial++)
        {
            byte[] elf = (byte[])original.Clone();
            // Garble a few bytes in the ELF and program headers or in the version-needs table.
            for (int k = 0; k < 4; k++)
            {
                int at = random.Next(2) == 0 ? random.Next(16, 0x400) : random.Next(start, end);
                elf[at] = (byte)random.Next(256);
            }
            try
            {
                LibTorchSharpElfPatch.Inspect(elf);
                LibTorchSharpElfPatch.Patch(elf);
            }
            catch (InvalidDataException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
            }
        }
    }

    // [start, end) of .gnu.version_r found through the section headers: an independent route to the table
    // the patch finds through the dynamic segment.
    private static (int Start, int End) VersionNeedsSection(byte[] elf)
    {
        long shoff = BinaryPrimitives.ReadInt64LittleEndian(elf.AsSpan(0x28));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3a));
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3c));
        for (int i = 0; i < shnum; i++)
        {
            var header = elf.AsSpan((int)shoff + i * shentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) == 0x6ffffffe)   // SHT_GNU_verneed
            {
                int offset = (int)BinaryPrimitives.ReadInt64LittleEndian(header[0x18..]);
                return (offset, offset + (int)BinaryPrimitives.ReadInt64LittleEndian(header[0x20..]));
            }
        }
        throw new InvalidOperationException("no .gnu.version_r section");
    }
}
