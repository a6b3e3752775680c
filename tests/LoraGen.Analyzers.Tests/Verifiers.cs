using Basic.Reference.Assemblies;
using LoraGen.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Testing;

namespace LoraGen.Analyzers.Tests;

/// <summary>The references every test compiles against: .NET 10's reference assemblies (from the
/// Basic.Reference.Assemblies package), TorchSharp and LoraGen. Nothing is downloaded.</summary>
internal static class TestReferences
{
    public static readonly ReferenceAssemblies None = new("net10.0");

    public static readonly MetadataReference[] All =
    [
        .. Net100.References.All,
        MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(LoraTargetAttribute).Assembly.Location),
        // LoraInit and LoraConfig live in LoraGen.Format (attributes name LoraInit values).
        MetadataReference.CreateFromFile(typeof(LoraInit).Assembly.Location),
    ];

    public static void Apply(SolutionState state)
    {
        state.AdditionalReferences.AddRange(All);
    }
}

/// <summary>Runs <see cref="LoraTargetAnalyzer"/> over a source whose expected diagnostics are marked
/// in it: <c>{|LORA0003:"q_prj"|}</c>.</summary>
internal sealed class AnalyzerTest : CSharpAnalyzerTest<LoraTargetAnalyzer, DefaultVerifier>
{
    public AnalyzerTest(string source)
    {
        TestCode = source;
        ReferenceAssemblies = TestReferences.None;
        TestReferences.Apply(TestState);
        // Unused private fields are the norm in these small classes.
        CompilerDiagnostics = CompilerDiagnostics.Errors;
    }

    protected override ParseOptions CreateParseOptions() =>
        new CSharpParseOptions(LanguageVersion.Latest);

    public static Task Run(string source) => new AnalyzerTest(source).RunAsync();
}

/// <summary>Applies <typeparamref name="TFix"/> to the marked diagnostics and compares with the expected source.</summary>
internal sealed class CodeFixTest<TFix> : CSharpCodeFixTest<LoraTargetAnalyzer, TFix, DefaultVerifier>
    where TFix : CodeFixProvider, new()
{
    public CodeFixTest(string source, string fixedSource)
    {
        TestCode = source;
        FixedCode = fixedSource;
        ReferenceAssemblies = TestReferences.None;
        TestReferences.Apply(TestState);
        TestReferences.Apply(FixedState);
        CompilerDiagnostics = CompilerDiagnostics.Errors;
    }

    protected override ParseOptions CreateParseOptions() =>
        new CSharpParseOptions(LanguageVersion.Latest);

    public static Task Run(string source, string fixedSource) => new CodeFixTest<TFix>(source, fixedSource).RunAsync();
}
