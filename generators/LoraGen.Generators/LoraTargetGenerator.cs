using LoraGen.Generators.Emit;
using LoraGen.Generators.Model;
using LoraGen.Generators.Parsing;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LoraGen.Generators;

/// <summary>
/// For every class with <c>[LoraTarget]</c> (on the class or on its fields), generates the partial
/// class that implements <c>LoraGen.ILoraModule</c>. The pipeline only: parsing is in
/// <see cref="Parser"/>, writing in <see cref="Emitter"/>.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class LoraTargetGenerator : IIncrementalGenerator
{
    /// <inheritdoc />
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var annotatedClasses = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                TorchSharpTypes.LoraTargetAttributeName,
                static (node, _) => node is ClassDeclarationSyntax,
                Parser.ParseClass)
            .Where(static spec => spec is not null)
            .WithTrackingName(TrackingNames.ClassSpecs);

        var classesWithAnnotatedFields = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                TorchSharpTypes.LoraTargetAttributeName,
                static (node, _) => node is VariableDeclaratorSyntax,
                Parser.ParseFieldOwner)
            .Where(static spec => spec is not null)
            .WithTrackingName(TrackingNames.FieldOwnerSpecs);

        context.RegisterSourceOutput(annotatedClasses, static (output, spec) => Emit(output, spec!));
        context.RegisterSourceOutput(classesWithAnnotatedFields, static (output, spec) => Emit(output, spec!));
    }

    private static void Emit(SourceProductionContext output, LoraClassSpec spec) =>
        output.AddSource(spec.HintName, Emitter.Emit(spec));
}
