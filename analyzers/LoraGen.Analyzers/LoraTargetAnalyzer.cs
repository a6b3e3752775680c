using System;
using System.Collections.Immutable;
using System.Linq;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace LoraGen.Analyzers;

/// <summary>
/// Checks every class that carries <c>[LoraTarget]</c> (on itself or on a field): the declaration,
/// the names and options in the attributes, and, where the layer sizes are constants, whether the
/// rank makes sense. Uses the same target resolution as the generator, so both agree on what a class
/// targets.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class LoraTargetAnalyzer : DiagnosticAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        Rules.NotPartial, Rules.NotAModule, Rules.UnknownName, Rules.UnsupportedLayer, Rules.CannotHoldWrapper,
        Rules.OptionOutOfRange, Rules.RankNotLow, Rules.NoSavings, Rules.TargetedTwice, Rules.NothingToAdapt,
        Rules.AdaptedAndTrainable, Rules.SmallScaling, Rules.GroupsDoNotDivideRank, Rules.QuantizedBaseRewritten);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var types = TorchSharpTypes.From(start.Compilation);
            if (types.LoraTargetAttribute is null)
                return; // the project does not reference LoraGen: nothing to check
            start.RegisterSymbolAction(symbol => AnalyzeGuarded(symbol, types), SymbolKind.NamedType);
        });
    }

    private static void AnalyzeGuarded(SymbolAnalysisContext context, TorchSharpTypes types)
    {
        try
        {
            Analyze(context, types);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // Code being typed can be in any state; a crash would show up as AD0001 on every
            // keystroke. Staying silent is safe: the generator emits nothing and the runtime checks.
            SwallowedException?.Invoke(error);
        }
    }

    /// <summary>Lets tests see what the guard above hides, so a bug cannot pass as silence.</summary>
    internal static Action<Exception>? SwallowedException { get; set; }

    private static void Analyze(SymbolAnalysisContext context, TorchSharpTypes types)
    {
        if (context.Symbol is not INamedTypeSymbol type)
            return;
        var annotated = AnnotatedClass.Read(type, types, context.Compilation, context.CancellationToken);
        if (annotated is null)
            return;
        var report = new Action<Diagnostic>(context.ReportDiagnostic);

        if (!DeclarationRules.Check(annotated, report))
            return; // not a partial Module class: the rest would only add noise
        OptionRules.Check(annotated, report);
        if (annotated.Resolution is not { } resolution)
            return; // an attribute cannot be read yet; the compiler reports why
        NameRules.Check(annotated, resolution, report);
        FieldRules.Check(annotated, resolution, report);
        QuantizationRules.Check(annotated, resolution, report);
        SizeRules.Check(annotated, resolution, report);
        if (resolution.Targets.IsEmpty && resolution.UnknownNames.IsEmpty && annotated.ClassAttribute is not null)
            DeclarationRules.ReportNothingToAdapt(annotated, report);
    }
}
