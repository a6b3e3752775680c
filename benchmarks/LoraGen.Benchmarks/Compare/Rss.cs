using System.Globalization;
using System.Runtime.InteropServices;

namespace LoraGen.Benchmarks.Compare;

/// <summary>This process's resident set, from /proc/self/status (Linux).</summary>
internal static class Rss
{
    /// <summary>VmHWM: the peak since the process started or since <see cref="ResetPeak"/>.</summary>
    public static long PeakBytes() => Read("VmHWM:");

    public static long CurrentBytes() => Read("VmRSS:");

    /// <summary>Linux clear_refs 5: VmHWM restarts from the current resident set.</summary>
    public static void ResetPeak() => File.WriteAllText("/proc/self/clear_refs", "5");

    /// <summary>Collects garbage (disposing what finalizers hold) and hands memory malloc keeps free back to the OS
    /// (glibc's malloc_trim), so the resident set is what is live.</summary>
    public static void ReleaseFreeMemory()
    {
        // Twice: a finalizer can release the last reference to an object with a finalizer of its own (TorchSharp's
        // wrappers hold native tensors), which the first round only queues; its memory would be freed after the
        // caller's baseline and land in the measurement.
        for (var round = 0; round < 2; round++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        // Aggressive: the GC returns its free regions to the OS now, not a few collections later (inside the measurement).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (OperatingSystem.IsLinux())
            _ = MallocTrim(0);
    }

    /// <summary>glibc's own account (mallinfo2, summed over its arenas): bytes in blocks handed out (heap and mmapped),
    /// and bytes freed but kept in the heap for reuse. The resident set holds what of the second was touched since the
    /// last trim. Zeros where mallinfo2 is missing (not glibc, or glibc before 2.33).</summary>
    public static (long InUse, long FreeHeld) MallocBytes()
    {
        try
        {
            var info = MallInfo2();
            return ((long)(info.UsedHeap + info.Mapped), (long)info.FreeHeap);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return (0, 0);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MallocInfo
    {
        public nuint Arena, FreeChunks, FastChunks, MappedChunks, Mapped, MaxTotal, FastFree, UsedHeap, FreeHeap, TopReleasable;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallocInfo MallInfo2();

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    private static long Read(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key, StringComparison.Ordinal));
        return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }
}
