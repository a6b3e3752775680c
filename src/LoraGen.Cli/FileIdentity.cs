using System.Runtime.InteropServices;

namespace LoraGen.Cli;

/// <summary>
/// Whether two paths name the same file, however they are spelled: relative or absolute, through <c>..</c>, a
/// symbolic link (to the file or to a folder on the way) or a hard link. On Linux this compares what the kernel
/// says the file is, (device, inode), with statx; elsewhere, or where statx is missing, it compares the paths
/// with every symbolic link resolved, which misses hard links only.
/// </summary>
internal static class FileIdentity
{
    private const int CurrentDirectory = -100; // AT_FDCWD: relative paths start at the working directory.
    private const uint InodeMask = 0x100;      // STATX_INO; the device is always filled in.
    private const int StatxSize = 256;         // struct statx, the same on every Linux architecture.
    private const int MaxLinks = 40;           // as Linux's ELOOP limit: a cycle of links gives up, not hangs.

    private static bool statxMissing;

    /// <summary>True when both paths exist as files and are the same file.</summary>
    public static bool SameFile(string first, string second)
    {
        if (!File.Exists(first) || !File.Exists(second))
            return false;
        if (OperatingSystem.IsLinux() && LinuxIdentity(first) is { } a && LinuxIdentity(second) is { } b)
            return a == b;
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return string.Equals(ResolvedPath(first), ResolvedPath(second), comparison);
    }

    private static (uint Major, uint Minor, ulong Inode)? LinuxIdentity(string path)
    {
        if (statxMissing)
            return null;
        var buffer = new byte[StatxSize];
        try
        {
            if (Statx(CurrentDirectory, path, 0, InodeMask, buffer) != 0)
                return null;
        }
        catch (Exception missing) when (missing is DllNotFoundException or EntryPointNotFoundException)
        {
            statxMissing = true; // glibc before 2.28, or another C library: fall back to resolved paths
            return null;
        }
        // struct statx: stx_ino at byte 32, stx_dev_major and stx_dev_minor at 136 and 140, native byte order.
        return (MemoryMarshal.Read<uint>(buffer.AsSpan(136)), MemoryMarshal.Read<uint>(buffer.AsSpan(140)), MemoryMarshal.Read<ulong>(buffer.AsSpan(32)));
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int directory, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    /// <summary>The absolute path with every symbolic link on the way resolved, component by component.</summary>
    internal static string ResolvedPath(string path)
    {
        var full = Path.GetFullPath(path);
        for (int links = 0; links < MaxLinks; links++)
        {
            string? resolved = ResolveFirstLink(full);
            if (resolved is null)
                return full;
            full = resolved;
        }
        return full;
    }

    // The path with its first symbolic link (from the root down) replaced by the link's target; null if none.
    private static string? ResolveFirstLink(string full)
    {
        string root = Path.GetPathRoot(full)!;
        var parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        string current = root;
        for (int i = 0; i < parts.Length; i++)
        {
            current = Path.Combine(current, parts[i]);
            if (new FileInfo(current).LinkTarget is not { } target)
                continue;
            string resolved = Path.GetFullPath(target, Path.GetDirectoryName(current)!);
            return Path.Combine([resolved, .. parts[(i + 1)..]]);
        }
        return null;
    }
}
