using LoraGen.Build;
using TorchSharp;

namespace LoraGen.Tests.Native;

public class TorchNativeTests
{
    // Passing here on Debian 12 proves the build step patched this test project's output.
    [Fact]
    public void EnsureLoaded_makes_torch_usable()
    {
        TorchNative.EnsureLoaded();
        TorchNative.EnsureLoaded();   // cached

        using var ones = torch.ones(2, 2);
        using var sum = ones.sum();
        Assert.Equal(4f, sum.item<float>());
    }

    [Fact]
    public void Output_copy_is_patched_where_needed_and_the_NuGet_cache_copy_never()
    {
        if (!OperatingSystem.IsLinux())
            return;
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        bool systemHasVersion = LibTorchSharpElfPatch.FindSystemLibStdCxx() is { } libstdcxx
            && LibTorchSharpElfPatch.DefinesVersion(libstdcxx, LibTorchSharpElfPatch.GlibcxxVersion);

        Assert.Equal(systemHasVersion ? GlibcxxRequirement.Required : GlibcxxRequirement.Weak,
            LibTorchSharpElfPatch.Inspect(File.ReadAllBytes(output)));
        Assert.Equal(GlibcxxRequirement.Required, LibTorchSharpElfPatch.Inspect(NuGetCacheLibrary.Read()));
    }
}
