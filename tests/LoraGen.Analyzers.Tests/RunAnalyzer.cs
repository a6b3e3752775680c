using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace LoraGen.Analyzers.Tests;

/// <summary>Runs the analyzer on a compilation directly, for tests that read whole messages or
/// look for analyzer failures (AD0001) over many sources.</summary>
internal static class RunAnalyzer
{
    /// <summary>Every exception the analyzer's guard swallowed in this test run.</summary>
    public static readonly System.Collections.Concurrent.ConcurrentQueue<Exception> Swallowed = new();

    static RunAnalyzer() => LoraTargetAnalyzer.SwallowedException = Swallowed.Enqueue;

    public static ImmutableArray<Diagnostic> On(string source)
    {
        var compilation = CSharpCompilation.Create(
            "UserCode",
            [CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest), path: "Source.cs")],
            TestReferences.All,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions([]), onAnalyzerException: null, concurrentAnalysis: false,
            logAnalyzerExecutionTime: false, reportSuppressedDiagnostics: false);
        return compilation.WithAnalyzers([new LoraTargetAnalyzer()], options)
            .GetAllDiagnosticsAsync().GetAwaiter().GetResult()
            .Where(d => d.Id.StartsWith("LORA", StringComparison.Ordinal) || d.Id == "AD0001")
            .ToImmutableArray();
    }

    /// <summary>The one LoraGen diagnostic with <paramref name="id"/>'s message.</summary>
    public static string Message(string source, string id) =>
        Assert.Single(On(source), d => d.Id == id).GetMessage(System.Globalization.CultureInfo.InvariantCulture);
}
