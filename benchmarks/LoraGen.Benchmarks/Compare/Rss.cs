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
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        if (OperatingSystem.IsLinux())
            _ = MallocTrim(0);
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    private static long Read(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key, StringComparison.Ordinal));
        return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }
}
