using System.Collections.Immutable;
using System.Globalization;
using LoraGen.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;

namespace LoraGen.Benchmarks.Generator;

/// <summary>
/// A synthetic user project for timing the source generator: <see cref="ClassCount"/> annotated
/// attention classes, one file each, compiled against the real TorchSharp and LoraGen assemblies.
/// </summary>
public static class SyntheticProject
{
    public const int ClassCount = 300;

    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    /// <summary>The compilation before generation.</summary>
    public static CSharpCompilation Create(int classCount = ClassCount) =>
        CSharpCompilation.Create(
            "SyntheticUserCode",
            Enumerable.Range(0, classCount).Select(i => CSharpSyntaxTree.ParseText(ClassSource(i), ParseOptions, path: $"Attention{i}.cs")),
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    /// <summary>A driver that records every tracked step, as the cacheability tests do.</summary>
    public static GeneratorDriver CreateDriver() =>
        CSharpGeneratorDriver.Create(
            [new LoraTargetGenerator().AsSourceGenerator()],
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>An edit a developer makes while typing: a method body of the first class changes.
    /// Nothing the generator reads changes, so it must re-run nothing.</summary>
    public static CSharpCompilation EditMethodBody(CSharpCompilation compilation)
    {
        var tree = compilation.SyntaxTrees.First();
        var text = tree.ToString().Replace("o_proj.call(q_proj.call(x)", "o_proj.call(q_proj.call(x * 2)", StringComparison.Ordinal);
        return compilation.ReplaceSyntaxTree(tree, tree.WithChangedText(SourceText.From(text)));
    }

    /// <summary>The tracked steps (named in <see cref="TrackingNames"/>) and output steps of a run that
    /// reported something other than Cached or Unchanged.</summary>
    public static IReadOnlyList<string> StepsThatRan(GeneratorDriver driver)
    {
        var result = driver.GetRunResult().Results.Single();
        var steps = result.TrackedSteps.Where(s => s.Key is TrackingNames.ClassSpecs or TrackingNames.FieldOwnerSpecs)
            .Concat(result.TrackedOutputSteps);
        return [.. steps
            .SelectMany(s => s.Value.SelectMany(run => run.Outputs).Select(output => (s.Key, output.Reason)))
            .Where(s => s.Reason is not (IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged))
            .Select(s => $"{s.Key}: {s.Reason}")];
    }

    private static string ClassSource(int index) => string.Create(CultureInfo.InvariantCulture, $$"""
        using LoraGen;
        using TorchSharp;
        using static TorchSharp.torch;
        using static TorchSharp.torch.nn;

        namespace Synthetic.Models{{index % 10}};

        [LoraTarget(Rank = 8, Alpha = 16, Targets = ["q_proj", "v_proj", "o_proj"])]
        public partial class Attention{{index}} : Module<Tensor, Tensor>
        {
            private const int Width = {{256 + 64 * (index % 8)}};
            private Module<Tensor, Tensor> q_proj = Linear(Width, Width);
            private Module<Tensor, Tensor> k_proj = Linear(Width, Width);
            private Module<Tensor, Tensor> v_proj = Linear(Width, Width, hasBias: false);
            [LoraTarget(Rank = 4)] private Module<Tensor, Tensor> o_proj = Linear(Width, Width);

            public Attention{{index}}() : base(nameof(Attention{{index}})) => RegisterComponents();

            public override Tensor forward(Tensor x) => o_proj.call(q_proj.call(x) + k_proj.call(x) + v_proj.call(x));
        }
        """);

    // The running framework's assemblies plus TorchSharp and LoraGen: nothing is downloaded.
    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
        [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal)
                || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Append(typeof(TorchSharp.torch).Assembly.Location)
            .Append(typeof(LoraTargetAttribute).Assembly.Location)
            .Append(typeof(LoraConfig).Assembly.Location)   // LoraGen.Format: LoraConfig, LoraLayerKind, LoraLayerShape, LoraInit
            .Distinct()
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))]);
}
