using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LoraGen.Analyzers;

/// <summary>LORA0001 (partial), LORA0002 (a Module) and LORA0010 (nothing to adapt).</summary>
internal static class DeclarationRules
{
    /// <summary>Reports what stops the generator from adding code to the class; true when nothing does.</summary>
    public static bool Check(AnnotatedClass annotated, Action<Diagnostic> report)
    {
        var type = annotated.Type;
        if (type.TypeKind != TypeKind.Class)
            return false; // the attribute's usage allows classes and fields only; the compiler reports the rest
        if (annotated.Types.Module is not null && !annotated.Types.IsModule(type)
            && !type.AllInterfaces.Any(i => i.TypeKind == TypeKind.Error) && type.BaseType?.TypeKind != TypeKind.Error)
        {
            report(Diagnostic.Create(Rules.NotAModule, annotated.Location, type.Name));
            return false;
        }

        var notPartial = NotPartial(type, annotated).ToList();
        if (notPartial.Count == 0)
            return annotated.Types.Module is not null;
        string who = notPartial.Count == 1
            ? (SymbolEqualityComparer.Default.Equals(notPartial[0], type) ? "it is" : $"'{notPartial[0].Name}', which contains it, is")
            : string.Join(" and ", notPartial.Select(t => $"'{t.Name}'")) + " are";
        report(Diagnostic.Create(Rules.NotPartial, annotated.Location, type.Name, who));
        return false;
    }

    public static void ReportNothingToAdapt(AnnotatedClass annotated, Action<Diagnostic> report)
    {
        var values = annotated.ClassAttribute?.Values;
        var leftOut = values is null ? ImmutableArray<string>.Empty : values.Exclude.AddRange(values.Trainable);
        bool leavesFieldsOut = annotated.Type.GetMembers().OfType<IFieldSymbol>().Any(f => leftOut.Contains(f.Name));
        string why = leavesFieldsOut
            ? "the fields it would adapt are all in Exclude or Trainable"
            : "no field holds a Linear, Embedding, Conv1d or Conv2d that the compiler can see; name fields whose layer is created elsewhere in Targets";
        report(Diagnostic.Create(Rules.NothingToAdapt, annotated.Location, annotated.Type.Name, why));
    }

    /// <summary>The type and every containing type with a declaration that lacks <c>partial</c>, outermost first.</summary>
    private static IEnumerable<INamedTypeSymbol> NotPartial(INamedTypeSymbol type, AnnotatedClass annotated)
    {
        var chain = new List<INamedTypeSymbol>();
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
            chain.Insert(0, current);
        return chain.Where(t => t.DeclaringSyntaxReferences.Any(r =>
            r.GetSyntax(annotated.Cancellation) is TypeDeclarationSyntax declaration
            && !declaration.Modifiers.Any(SyntaxKind.PartialKeyword)));
    }
}
