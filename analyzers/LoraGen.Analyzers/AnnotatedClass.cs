using System.Collections.Generic;
using System.Linq;
using System.Threading;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;

namespace LoraGen.Analyzers;

/// <summary>One attribute as written: its data, and the values it sets (null while unreadable).</summary>
internal sealed class WrittenAttribute
{
    public WrittenAttribute(AttributeData data, LoraAttributeData? values)
    {
        Data = data;
        Values = values;
    }

    public AttributeData Data { get; }
    public LoraAttributeData? Values { get; }
}

/// <summary>A type that carries <c>[LoraTarget]</c> on itself or on a field, with what the rules need.</summary>
internal sealed class AnnotatedClass
{
    private AnnotatedClass(
        INamedTypeSymbol type, TorchSharpTypes types, Compilation compilation, CancellationToken cancellation,
        WrittenAttribute? classAttribute, Dictionary<IFieldSymbol, WrittenAttribute> fieldAttributes)
    {
        Type = type;
        Types = types;
        Compilation = compilation;
        Cancellation = cancellation;
        ClassAttribute = classAttribute;
        FieldAttributes = fieldAttributes;
    }

    public INamedTypeSymbol Type { get; }
    public TorchSharpTypes Types { get; }
    public Compilation Compilation { get; }
    public CancellationToken Cancellation { get; }
    public WrittenAttribute? ClassAttribute { get; }
    public IReadOnlyDictionary<IFieldSymbol, WrittenAttribute> FieldAttributes { get; }

    /// <summary>Which fields are adapted and trained; null until every attribute can be read.</summary>
    public TargetResolution? Resolution { get; private set; }

    /// <summary>Where diagnostics about the class as a whole go: its name in the first declaration.</summary>
    public Location Location => Type.Locations.FirstOrDefault() ?? Location.None;

    public IEnumerable<WrittenAttribute> Attributes =>
        ClassAttribute is null ? FieldAttributes.Values : new[] { ClassAttribute }.Concat(FieldAttributes.Values);

    /// <summary>Null when neither the type nor any of its fields carries the attribute.</summary>
    public static AnnotatedClass? Read(INamedTypeSymbol type, TorchSharpTypes types, Compilation compilation, CancellationToken cancellation)
    {
        var classAttribute = Find(type.GetAttributes(), types);
        var fieldAttributes = new Dictionary<IFieldSymbol, WrittenAttribute>(SymbolEqualityComparer.Default);
        foreach (var field in type.GetMembers().OfType<IFieldSymbol>())
        {
            if (Find(field.GetAttributes(), types) is { } written)
                fieldAttributes[field] = written;
        }
        if (classAttribute is null && fieldAttributes.Count == 0)
            return null;

        var annotated = new AnnotatedClass(type, types, compilation, cancellation, classAttribute, fieldAttributes);
        if (types.Module is not null && types.IsModule(type))
            annotated.Resolution = TargetResolver.Resolve(type, types, compilation, cancellation);
        return annotated;
    }

    /// <summary>The field's own attribute, if it has one.</summary>
    public WrittenAttribute? AttributeOf(IFieldSymbol field) =>
        FieldAttributes.TryGetValue(field, out var written) ? written : null;

    private static WrittenAttribute? Find(System.Collections.Immutable.ImmutableArray<AttributeData> attributes, TorchSharpTypes types)
    {
        var data = attributes.FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, types.LoraTargetAttribute));
        return data is null ? null : new WrittenAttribute(data, LoraAttributeData.Read(data));
    }
}
