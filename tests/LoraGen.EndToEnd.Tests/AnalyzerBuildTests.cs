using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;

namespace LoraGen.EndToEnd.Tests;

/// <summary>
/// A real `dotnet build` of a project full of deliberate mistakes (BuildFixtures/Mistakes): the
/// analyzers load in the compiler, report each rule with its severity, and honour .editorconfig.
/// </summary>
public sealed partial class AnalyzerBuildTests
{
    [Fact]
    public void A_real_build_prints_each_rule_and_honours_editorconfig()
    {
        var output = BuildMistakes();
        var reported = DiagnosticLine().Matches(output)
            .Select(m => (Severity: m.Groups[1].Value, Id: m.Groups[2].Value))
            .ToHashSet();

        string[] errors = ["LORA0001", "LORA0002", "LORA0003", "LORA0004", "LORA0005", "LORA0006"];
        string[] warnings = ["LORA0007", "LORA0008", "LORA0009", "LORA0010", "LORA0013"];
        foreach (var id in errors)
            Assert.Contains(("error", id), reported);
        foreach (var id in warnings)
            Assert.Contains(("warning", id), reported);
        // .editorconfig raises LORA0012 (info by default, not printed) to a warning and turns LORA0011 off.
        Assert.Contains(("warning", "LORA0012"), reported);
        Assert.DoesNotContain(reported, d => d.Id == "LORA0011");
    }

    private static string BuildMistakes()
    {
        var project = Path.Combine(RepositoryRoot(), "tests", "LoraGen.EndToEnd.Tests", "BuildFixtures", "Mistakes", "Mistakes.csproj");
        var configuration = typeof(AnalyzerBuildTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        // The analyzers and LoraGen were built with this test project (it references them); build only the fixture.
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            ArgumentList = { "build", project, "-c", configuration, "--no-dependencies", "-nodeReuse:false", "-nologo" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var build = Process.Start(start)!;
        var stderr = build.StandardError.ReadToEndAsync();
        string output = build.StandardOutput.ReadToEnd();
        if (!build.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            build.Kill(entireProcessTree: true);
            Assert.Fail("dotnet build of the Mistakes fixture took over 5 minutes:\n" + output);
        }
        return output + stderr.Result;
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "LoraGen.sln")))
                return directory.FullName;
        throw new InvalidOperationException($"No LoraGen.sln above {AppContext.BaseDirectory}.");
    }

    [GeneratedRegex(@"\b(error|warning) (LORA\d{4})\b")]
    private static partial Regex DiagnosticLine();
}
