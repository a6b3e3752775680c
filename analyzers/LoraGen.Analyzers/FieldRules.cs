using System;
using System.Collections.Immutable;
using System.Linq;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;

namespace LoraGen.Analyzers;

/// <summary>LORA0004 (not a supported layer), LORA0005 (cannot hold the wrapper) and
/// LORA0011 (adapted and trained in full), per target field.</summary>
internal static class FieldRules
{
    public static void Check(AnnotatedClass annotated, TargetResolution resolution, Action<Diagnostic> report)
    {
        foreach (var target in resolution.Targets)
        {
            var field = target.Field;
            var location = field.Locations.FirstOrDefault() ?? annotated.Location;
            if (UnsupportedHolding(target, annotated.Types) is { } holding)
            {
                string remedy = annotated.AttributeOf(field) is not null
                    ? "remove its [LoraTarget]"
                    : "remove it from Targets";
                report(Diagnostic.Create(Rules.UnsupportedLayer, location, field.Name, holding, remedy));
                continue;
            }

            bool readOnly = field.IsReadOnly, sealedType = !annotated.Types.CanHoldWrapper(field.Type);
            if (readOnly || sealedType)
            {
                string declared = $"declared as '{field.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat)}', a type the wrapper is not";
                var (why, remedy) = (readOnly, sealedType) switch
                {
                    (true, true) => ("is readonly and " + declared, $"declare it 'Module<Tensor, Tensor> {field.Name}' without readonly"),
                    (true, false) => ("is readonly", "remove 'readonly'"),
                    _ => ("is " + declared, $"declare it 'Module<Tensor, Tensor> {field.Name}'"),
                };
                report(Diagnostic.Create(Rules.CannotHoldWrapper, location, DeclarationFixValues(readOnly, sealedType), field.Name, why, remedy));
            }
        }

        if (annotated.ClassAttribute is not { } classAttribute)
            return;
        foreach (var target in resolution.Targets.Where(t => resolution.Trainable.Contains(t.Field, SymbolEqualityComparer.Default)))
        {
            report(Diagnostic.Create(Rules.AdaptedAndTrainable,
                AttributeLocations.OfName(classAttribute.Data, "Trainable", target.Field.Name, annotated.Cancellation),
                target.Field.Name));
        }
    }

    /// <summary>What the LORA0005 fix changes: <c>readonly</c>, the declared type, or both.</summary>
    private static ImmutableDictionary<string, string?> DeclarationFixValues(bool readOnly, bool sealedType)
    {
        var values = ImmutableDictionary<string, string?>.Empty;
        if (readOnly)
            values = values.Add(FixProperties.RemoveReadOnly, "true");
        if (sealedType)
            values = values.Add(FixProperties.DeclareModule, "true");
        return values;
    }

    /// <summary>"a LayerNorm" when the field is known to hold something LoRA cannot adapt; null when it
    /// holds a supported layer or the compiler cannot tell (the runtime checks those).</summary>
    private static string? UnsupportedHolding(ResolvedTarget target, TorchSharpTypes types)
    {
        if (target.Kind is not null)
            return null;
        var declared = target.Field.Type;
        if (declared.TypeKind == TypeKind.Error)
            return null;
        if (!types.IsModuleType(declared))
            return WithArticle(declared.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat));
        if (!types.CanHoldWrapper(declared))
            return WithArticle(declared.Name); // a concrete module type, e.g. LayerNorm
        return target.Creation?.TypeName is { } created ? WithArticle(created) : null;
    }

    private static string WithArticle(string name) =>
        ("aeiouAEIOU".IndexOf(name[0]) >= 0 ? "an " : "a ") + name;
}
