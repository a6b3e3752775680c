using System.Diagnostics;
using LoraGen.Files;
using static LoraGen.Cli.Tests.CliHarness;

namespace LoraGen.Cli.Tests;

/// <summary><c>loragen merge</c> checks its paths before it reads a tensor: an <c>--out</c> that would replace
/// the base checkpoint, a directory, a missing folder; each refused with the user's path and what to do.</summary>
public sealed class MergeArgumentTests
{
    public enum SameFile { SamePath, RelativeAndAbsolute, DotDot, Symlink, SymlinkedFolder, HardLink }

    [Theory]
    [InlineData(SameFile.SamePath)]
    [InlineData(SameFile.RelativeAndAbsolute)]
    [InlineData(SameFile.DotDot)]
    [InlineData(SameFile.Symlink)]
    [InlineData(SameFile.SymlinkedFolder)]
    [InlineData(SameFile.HardLink)]
    public void An_out_that_is_the_base_checkpoint_is_refused_and_the_base_is_untouched(SameFile how)
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var basePath = Path.Combine(directory, "base.safetensors");
        var before = File.ReadAllBytes(basePath);
        var output = SameFileAs(basePath, how);

        var (code, stdout, stderr) = Run("merge", "--base", basePath, "--adapter", adapter, "--out", output);

        Assert.Equal(1, code);
        Assert.Contains($"--out '{output}'", stderr);
        Assert.Contains($"--base '{basePath}'", stderr);
        Assert.Contains("the same file", stderr);
        Assert.Contains("--force", stderr);
        Assert.DoesNotContain("[1/", stderr); // refused before any tensor was read
        Assert.Equal("", stdout);
        Assert.Equal(before, File.ReadAllBytes(basePath));
    }

    [Fact]
    public void Force_replaces_the_base_checkpoint_with_the_merge()
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var basePath = Path.Combine(directory, "base.safetensors");

        var (code, _, stderr) = Run("merge", "--base", basePath, "--adapter", adapter, "--out", basePath, "--force");

        Assert.True(code == 0, stderr);
        using var merged = SafetensorsReader.Open(basePath);
        // W + 2·B·A, as in CliTests.Merge_writes_the_closed_form_and_reports_progress.
        Assert.Equal([2f, 2f, 3f, -2f, -3f, -6f], Singles(merged.ReadBytes("proj.weight")));
    }

    [Fact]
    public void An_out_that_is_the_adapters_own_file_is_refused_even_with_force()
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var weights = Path.Combine(adapter, "adapter_model.safetensors");
        var before = File.ReadAllBytes(weights);

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"), "--adapter", adapter, "--out", weights, "--force");

        Assert.Equal(1, code);
        Assert.Contains($"--out '{weights}' is the adapter's own adapter_model.safetensors", stderr);
        Assert.Equal(before, File.ReadAllBytes(weights));
    }

    [Fact]
    public void An_out_that_is_a_directory_is_refused_before_any_work()
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var output = Path.Combine(directory, "out");
        Directory.CreateDirectory(output);

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"), "--adapter", adapter, "--out", output);

        Assert.Equal(1, code);
        Assert.Contains($"--out '{output}' is a directory", stderr);
        Assert.Contains(Path.Combine(output, "model.safetensors"), stderr); // what to give instead
        Assert.DoesNotContain("[1/", stderr);
        Assert.Empty(Directory.EnumerateFileSystemEntries(output));
    }

    [Fact]
    public void An_out_in_a_missing_folder_names_the_folder_not_a_temporary_file()
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var folder = Path.Combine(directory, "no", "such");
        var output = Path.Combine(folder, "merged.safetensors");

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"), "--adapter", adapter, "--out", output);

        Assert.Equal(1, code);
        Assert.Contains($"the folder '{folder}' does not exist", stderr);
        Assert.Contains("create it", stderr);
        Assert.DoesNotContain(".tmp", stderr);
        Assert.DoesNotContain("[1/", stderr);
    }

    [Fact]
    public void An_out_in_a_folder_that_takes_no_files_is_refused_before_any_work()
    {
        // /proc exists on every Linux and refuses new files even to root, who may write anywhere else (the tests
        // run as root here, so a folder without write permission would not do).
        if (!OperatingSystem.IsLinux())
            return;
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var output = "/proc/merged.safetensors";

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"), "--adapter", adapter, "--out", output);

        Assert.Equal(1, code);
        Assert.Contains($"--out '{output}': cannot create files in '/proc' (", stderr);
        Assert.Contains("choose a folder you can write to", stderr);
        Assert.DoesNotContain(".probe", stderr);
        Assert.DoesNotContain("[1/", stderr);
    }

    [Fact]
    public void Every_bad_path_is_named_at_once()
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var weights = Path.Combine(adapter, "adapter_model.safetensors");

        // --base a directory, --adapter a file inside the adapter directory, --out a directory.
        var (code, _, stderr) = Run("merge", "--base", adapter, "--adapter", weights, "--out", directory);

        Assert.Equal(1, code);
        Assert.Contains($"--base '{adapter}' is a directory, not a file", stderr);
        Assert.Contains($"--adapter '{weights}' is a file, not a directory", stderr);
        Assert.Contains($"give '{adapter}'", stderr); // the folder that holds it
        Assert.Contains($"--out '{directory}' is a directory", stderr);
        Assert.Equal(3, stderr.Split('\n').Count(line => line.StartsWith("error: ", StringComparison.Ordinal)));
    }

    // The same file as `path`, named another way.
    private static string SameFileAs(string path, SameFile how)
    {
        var directory = Path.GetDirectoryName(path)!;
        switch (how)
        {
            case SameFile.SamePath:
                return path;
            case SameFile.RelativeAndAbsolute:
                return Path.GetRelativePath(Directory.GetCurrentDirectory(), path);
            case SameFile.DotDot:
                Directory.CreateDirectory(Path.Combine(directory, "sub"));
                return Path.Combine(directory, "sub", "..", Path.GetFileName(path));
            case SameFile.Symlink:
                var link = Path.Combine(directory, "link.safetensors");
                File.CreateSymbolicLink(link, path);
                return link;
            case SameFile.SymlinkedFolder:
                var folder = Path.Combine(directory, "linked-folder");
                Directory.CreateSymbolicLink(folder, directory);
                return Path.Combine(folder, Path.GetFileName(path));
            default:
                var hardLink = Path.Combine(directory, "hard.safetensors");
                // .NET has no API for hard links; ln is everywhere these tests run (Linux, macOS).
                using (var ln = Process.Start(new ProcessStartInfo("ln", [path, hardLink]))!)
                {
                    ln.WaitForExit();
                    Assert.Equal(0, ln.ExitCode);
                }
                return hardLink;
        }
    }
}
