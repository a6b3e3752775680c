using TorchSharp;

namespace LoraGen.Tests.Native;

/// <summary>The untouched libLibTorchSharp.so in the NuGet cache. Tests only ever read it.</summary>
internal static class NuGetCacheLibrary
{
    public static string Path
    {
        get
        {
            string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } env
                ? env
                : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            string version = typeof(torch).Assembly.GetName().Version!.ToString(3);   // 0.107.0
            string path = System.IO.Path.Combine(packages, "torchsharp", version, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
            Assert.True(File.Exists(path), $"TorchSharp's native library is not at {path} (set NUGET_PACKAGES?)");
            return path;
        }
    }

    public static byte[] Read() => File.ReadAllBytes(Path);
}
