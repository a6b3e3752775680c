using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;

namespace LoraGen.SourceShared;

/// <summary>One field LoRA will wrap, with the options in effect for it.</summary>
internal sealed class ResolvedTarget
{
    public ResolvedTarget(IFieldSymbol field, EffectiveOptions options, LayerCreation? creation, string? kind)
    {
        Field = field;
        Options = options;
        Creation = creation;
        Kind = kind;
    }

    public IFieldSymbol Field { get; }
    public EffectiveOptions Options { get; }
    public LayerCreation? Creation { get; }

    /// <summary>The layer kind, from the declared type or from what is assigned; null if unknown.</summary>
    public string? Kind { get; }
}

/// <summary>A name in Targets, Exclude or Trainable that is not a field of the class.</summary>
internal readonly record struct UnknownName(string Name, string Property);

/// <summary>Which fields of a <c>[LoraTarget]</c> class are adapted, which are trained in full,
/// and what in the attribute does not match the class.</summary>
internal sealed class TargetResolution
{
    public TargetResolution(
        ImmutableArray<ResolvedTarget> targets,
        ImmutableArray<IFieldSymbol> trainable,
        ImmutableArray<UnknownName> unknownNames)
    {
        Targets = targets;
        Trainable = trainable;
        UnknownNames = unknownNames;
    }

    public ImmutableArray<ResolvedTarget> Targets { get; }
    public ImmutableArray<IFieldSymbol> Trainable { get; }
    public ImmutableArray<UnknownName> UnknownNames { get; }
}

internal static class TargetResolver
{
    /// <summary>
    /// Resolves the targets of <paramref name="type"/>. Null when an attribute cannot be read yet
    /// (code being typed). Targets default to every field that holds a supported layer, except those
    /// in Exclude or Trainable; a field with its own <c>[LoraTarget]</c> is always a target and
    /// overrides the class's options.
    /// </summary>
    public static TargetResolution? Resolve(
        INamedTypeSymbol type, TorchSharpTypes types, Compilation compilation, CancellationToken cancellation)
    {
        LoraAttributeData? classOptions = null;
        var classAttribute = FindAttribute(type.GetAttributes(), types);
        if (classAttribute is not null && (classOptions = LoraAttributeData.Read(classAttribute)) is null)
            return null;

        var fields = type.GetMembers().OfType<IFieldSymbol>()
            .Where(f => !f.IsStatic && !f.IsConst && !f.IsImplicitlyDeclared)
            .ToImmutableArray();
        var byName = fields.GroupBy(f => f.Name).ToDictionary(g => g.Key, g => g.First());
        var unknown = ImmutableArray.CreateBuilder<UnknownName>();

        var fieldOptions = new Dictionary<IFieldSymbol, LoraAttributeData>(SymbolEqualityComparer.Default);
        foreach (var field in fields)
        {
            var attribute = FindAttribute(field.GetAttributes(), types);
            if (attribute is null) continue;
            var options = LoraAttributeData.Read(attribute);
            if (options is null) return null;
            fieldOptions[field] = options;
        }

        IEnumerable<IFieldSymbol> Named(ImmutableArray<string> names, string property)
        {
            foreach (var name in names)
            {
                if (byName.TryGetValue(name, out var field)) yield return field;
                else unknown.Add(new UnknownName(name, property));
            }
        }

        var excluded = new HashSet<IFieldSymbol>(Named(classOptions?.Exclude ?? ImmutableArray<string>.Empty, "Exclude"), SymbolEqualityComparer.Default);
        var trainable = Named(classOptions?.Trainable ?? ImmutableArray<string>.Empty, "Trainable").ToImmutableArray();
        var explicitTargets = new HashSet<IFieldSymbol>(Named(classOptions?.Targets ?? ImmutableArray<string>.Empty, "Targets"), SymbolEqualityComparer.Default);
        bool useDefaultTargets = classOptions is not null && classOptions.Targets.IsEmpty;

        var targets = ImmutableArray.CreateBuilder<ResolvedTarget>();
        foreach (var field in fields)
        {
            cancellation.ThrowIfCancellationRequested();
            bool hasOwnAttribute = fieldOptions.ContainsKey(field);
            // A Trainable field trains in full: the default set leaves it out (naming it in Targets is LORA0011).
            bool inDefaultSet = useDefaultTargets && !trainable.Contains(field, SymbolEqualityComparer.Default);
            if (!hasOwnAttribute && (excluded.Contains(field) || !(explicitTargets.Contains(field) || inDefaultSet)))
                continue;
            var creation = types.LayerKindOf(field.Type) is null && types.IsModuleType(field.Type)
                ? LayerCreation.Find(field, types, compilation, cancellation)
                : null;
            var kind = types.LayerKindOf(field.Type) ?? creation?.Kind;
            bool named = hasOwnAttribute || explicitTargets.Contains(field);
            if (!named && kind is null)
                continue; // the default set holds only fields known to hold a supported layer
            fieldOptions.TryGetValue(field, out var own);
            targets.Add(new ResolvedTarget(field, LoraAttributeData.Combine(classOptions, own), creation, kind));
        }
        return new TargetResolution(targets.ToImmutable(), trainable, unknown.ToImmutable());
    }

    private static AttributeData? FindAttribute(ImmutableArray<AttributeData> attributes, TorchSharpTypes types) =>
        attributes.FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, types.LoraTargetAttribute));
}
