using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LoraGen.Cli.Tests;

/// <summary>The two packages' versions and metadata, read from MSBuild's evaluation of the real project files
/// (no build, no pack): a local <c>dotnet pack</c> gets a version of its own, a caller's version wins, and
/// nuget.org would show a readme, a licence and the repository.</summary>
public sealed class PackageMetadataTests
{
    private static readonly string[] Packages = ["src/LoraGen/LoraGen.csproj", "src/LoraGen.Cli/LoraGen.Cli.csproj"];

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void A_local_pack_gets_a_unique_pre_release_version(int package)
    {
        // dotnet pack sets _IsPacking=true for the projects it evaluates.
        var values = Evaluate(Packages[package], ["-p:_IsPacking=true"], "VersionPrefix", "PackageVersion");
        var (prefix, version) = (values["VersionPrefix"], values["PackageVersion"]);
        Assert.Matches(@"^\d+\.\d+\.\d+$", prefix);
        Assert.Matches($@"^{Regex.Escape(prefix)}-local\.\d{{14}}$", version);
        var stamp = DateTime.ParseExact(version[^14..], "yyyyMMddHHmmss", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
        Assert.InRange(stamp, DateTime.UtcNow.AddHours(-1), DateTime.UtcNow.AddMinutes(1));
    }

    [Fact]
    public void A_version_or_suffix_the_caller_passes_wins_and_a_build_has_no_suffix()
    {
        var project = Packages[1];
        var prefix = Evaluate(project, [], "VersionPrefix")["VersionPrefix"];
        Assert.Equal("2.3.4", Evaluate(project, ["-p:_IsPacking=true", "-p:Version=2.3.4"], "PackageVersion")["PackageVersion"]);
        Assert.Equal($"{prefix}-rc.1", Evaluate(project, ["-p:_IsPacking=true", "-p:VersionSuffix=rc.1"], "PackageVersion")["PackageVersion"]);
        Assert.Equal(prefix, Evaluate(project, [], "PackageVersion")["PackageVersion"]); // builds stay incremental
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Both_packages_carry_readme_licence_and_repository(int package)
    {
        var values = Evaluate(Packages[package], [], "PackageReadmeFile", "PackageLicenseExpression", "RepositoryUrl", "PackageProjectUrl", "Description");
        Assert.Equal("README.md", values["PackageReadmeFile"]);
        Assert.Equal("MIT", values["PackageLicenseExpression"]);
        Assert.Equal("https://github.com/loragen/loragen", values["RepositoryUrl"]);
        Assert.Equal("https://github.com/loragen/loragen", values["PackageProjectUrl"]);
        Assert.NotEqual("", values["Description"]);
        Assert.True(File.Exists(Path.Combine(RepositoryRoot, "LICENSE")));
        Assert.Contains("MIT License", File.ReadAllText(Path.Combine(RepositoryRoot, "LICENSE")));
    }

    private static readonly string RepositoryRoot = FindRoot();

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "LoraGen.sln")))
                return directory.FullName;
        throw new InvalidOperationException($"No LoraGen.sln above {AppContext.BaseDirectory}.");
    }

    private static Dictionary<string, string> Evaluate(string project, string[] properties, params string[] names)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in (string[])["msbuild", project, "-nologo", "-nodeReuse:false", .. properties, .. names.Select(name => $"-getProperty:{name}")])
            start.ArgumentList.Add(argument);
        // The test host's own MSBuild settings would point the child at the test run's MSBuild.
        foreach (var variable in (string[])["MSBUILD_EXE_PATH", "MSBuildExtensionsPath", "MSBuildSDKsPath", "MSBuildLoadMicrosoftTargetsReadOnly"])
            start.Environment.Remove(variable);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, output.Result + error);
        var text = output.Result.Trim();
        if (names.Length == 1)
            return new Dictionary<string, string> { [names[0]] = text };
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("Properties").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "");
    }
}
