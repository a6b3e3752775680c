using System.Reflection;

namespace LoraGen.Cli.Tests;

/// <summary>loragen reads and merges adapters without TorchSharp: nothing it references can load TorchSharp's
/// native libraries (which need a matching libtorch and, on Debian 12, a patched libLibTorchSharp).</summary>
public class TorchFreeTests
{
    [Fact]
    public void Nothing_the_tool_references_is_TorchSharp()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<Assembly>([typeof(LoragenCommand).Assembly]);
        while (pending.Count > 0)
        {
            var assembly = pending.Pop();
            foreach (var name in assembly.GetReferencedAssemblies())
            {
                Assert.False(name.Name!.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase),
                    $"{assembly.GetName().Name} references {name.Name}");
                if (name.Name.StartsWith("LoraGen", StringComparison.Ordinal) && seen.Add(name.Name))
                    pending.Push(Assembly.Load(name));
            }
        }
        Assert.Contains("LoraGen.Format", seen);
    }

    [Fact]
    public void Inspecting_and_merging_load_no_TorchSharp_assembly_or_native_library()
    {
        var directory = ScratchDirectories.New();
        var adapter = CliHarness.Fixture(directory);
        Assert.Equal(0, CliHarness.Run("inspect", adapter).Code);
        Assert.Equal(0, CliHarness.Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", adapter, "--out", Path.Combine(directory, "merged.safetensors")).Code);

        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(),
            assembly => assembly.GetName().Name!.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase));
        if (OperatingSystem.IsLinux())
            Assert.DoesNotContain(File.ReadLines("/proc/self/maps"),
                line => line.Contains("libtorch", StringComparison.Ordinal) || line.Contains("LibTorchSharp", StringComparison.Ordinal));
    }
}
