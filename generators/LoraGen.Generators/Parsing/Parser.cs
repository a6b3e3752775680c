using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using LoraGen.Generators.Model;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LoraGen.Generators.Parsing;

/// <summary>
/// Turns a [LoraTarget] class into a <see cref="LoraClassSpec"/>, or into nothing when the code
/// cannot be generated for (not partial, not a Module, a target that cannot hold the wrapper, a
/// name that is not a field, code still being typed). The analyzers explain those cases; the
/// generator stays silent and never throws.
/// </summary>
internal static class Parser
{
    /// <summary>For a class that carries the attribute.</summary>
    public static LoraClassSpec? ParseClass(GeneratorAttributeSyntaxContext context, CancellationToken cancellation) =>
        context.TargetSymbol is INamedTypeSymbol type
            ? Guarded(type, TorchSharpTypes.From(context.SemanticModel.Compilation), context.SemanticModel.Compilation, cancellation)
            : null;

    /// <summary>
    /// For a field that carries the attribute, in a class that does not: the class is parsed once,
    /// from its first such field, so each class yields one spec.
    /// </summary>
    public static LoraClassSpec? ParseFieldOwner(GeneratorAttributeSyntaxContext context, CancellationToken cancellation)
    {
        if (context.TargetSymbol is not IFieldSymbol { ContainingType: { } owner } field)
            return null;
        var types = TorchSharpTypes.From(context.SemanticModel.Compilation);
        bool IsLoraTarget(AttributeData a) =>
            SymbolEqualityComparer.Default.Equals(a.AttributeClass, types.LoraTargetAttribute);
        if (owner.GetAttributes().Any(IsLoraTarget))
            return null; // the class pipeline handles it
        var first = owner.GetMembers().OfType<IFieldSymbol>().FirstOrDefault(f => f.GetAttributes().Any(IsLoraTarget));
        if (!SymbolEqualityComparer.Default.Equals(first, field))
            return null;
        return Guarded(owner, types, context.SemanticModel.Compilation, cancellation);
    }

    private static LoraClassSpec? Guarded(INamedTypeSymbol type, TorchSharpTypes types, Compilation compilation, CancellationToken cancellation)
    {
        try
        {
            return Parse(type, types, compilation, cancellation);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // Whatever the user's code looks like, the host must not crash: emit nothing.
            return null;
        }
    }

    private static LoraClassSpec? Parse(INamedTypeSymbol type, TorchSharpTypes types, Compilation compilation, CancellationToken cancellation)
    {
        if (type.TypeKind != TypeKind.Class || type.IsStatic || types.Module is null || !types.IsModule(type))
            return null;
        if (!IsPartialAll(type, cancellation))
            return null;

        var resolution = TargetResolver.Resolve(type, types, compilation, cancellation);
        // No targets is still generated (LORA0010 is a warning): ApplyLora then adapts nothing here and
        // trains the Trainable fields, instead of refusing the whole model.
        if (resolution is null || resolution.UnknownNames.Length > 0)
            return null;
        if (type.GetMembers().GroupBy(m => m.Name).Any(g => g.Count() > 1 && g.Any(m => m is IFieldSymbol)))
            return null; // a field declared twice: the compiler reports it, and nothing can be generated


        var targets = new List<LoraTargetSpec>();
        foreach (var target in resolution.Targets)
        {
            var field = target.Field;
            if (field.IsReadOnly || !types.CanHoldWrapper(field.Type))
                return null; // readonly, or a type the wrapper cannot be stored in: the analyzers explain
            if (target.Kind is null && target.Creation is { TypeName: not null })
                return null; // assigned something the compiler knows is not a supported layer
            var creation = target.Creation;
            long? kernel = target.Kind is LayerKinds.Linear or LayerKinds.Embedding ? 1 : creation?.KernelElements;
            targets.Add(new LoraTargetSpec(
                field.Name, target.Options.Rank, target.Options.Alpha, target.Options.Dropout,
                target.Options.UseRsLora, target.Options.Init, target.Kind,
                creation?.InFeatures, creation?.OutFeatures, kernel, target.Options.UseDora, target.Options.Quantize));
        }

        if (resolution.Trainable.Any(f => !types.IsModuleType(f.Type)))
            return null;

        var containing = new List<TypeDeclarationSpec>();
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
            containing.Insert(0, Declaration(outer));

        return new LoraClassSpec(
            type.ContainingNamespace is { IsGlobalNamespace: false } ns ? ns.ToDisplayString() : null,
            containing.ToEquatableArray(),
            Declaration(type),
            targets.ToEquatableArray(),
            resolution.Trainable.Select(f => f.Name).ToEquatableArray());
    }

    /// <summary>Every declaration of the type and of each containing type says <c>partial</c>.</summary>
    private static bool IsPartialAll(INamedTypeSymbol type, CancellationToken cancellation)
    {
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            if (current.DeclaringSyntaxReferences.Length == 0)
                return false;
            foreach (var reference in current.DeclaringSyntaxReferences)
            {
                if (reference.GetSyntax(cancellation) is not TypeDeclarationSyntax declaration
                    || !declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
                    return false;
            }
        }
        return true;
    }

    private static TypeDeclarationSpec Declaration(INamedTypeSymbol type)
    {
        string keyword = type switch
        {
            { IsRecord: true, TypeKind: TypeKind.Struct } => "record struct",
            { IsRecord: true } => "record",
            { TypeKind: TypeKind.Struct } => "struct",
            { TypeKind: TypeKind.Interface } => "interface",
            _ => "class",
        };
        return new TypeDeclarationSpec(keyword, type.Name, type.TypeParameters.Select(p => p.Name).ToEquatableArray());
    }
}
