using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;

namespace LoraGen.Analyzers;

/// <summary>LORA0003 (a name that is not a field) and LORA0009 (a field targeted twice, differently).</summary>
internal static class NameRules
{
    public static void Check(AnnotatedClass annotated, TargetResolution resolution, Action<Diagnostic> report)
    {
        if (annotated.ClassAttribute is not { Values: { } classValues } classAttribute)
            return; // names are only listed on the class's attribute
        var fieldNames = annotated.Type.GetMembers().OfType<IFieldSymbol>()
            .Where(f => !f.IsStatic && !f.IsConst && !f.IsImplicitlyDeclared)
            .Select(f => f.Name).Distinct().ToImmutableArray();

        foreach (var unknown in resolution.UnknownNames)
        {
            var closest = ClosestName(unknown.Name, fieldNames);
            string hint = closest is not null
                ? $"; did you mean '{closest}'?"
                : fieldNames.IsEmpty ? "; it has no fields" : $"; its fields are {List(fieldNames)}";
            var properties = closest is null
                ? ImmutableDictionary<string, string?>.Empty
                : ImmutableDictionary<string, string?>.Empty.Add(FixProperties.ClosestName, closest);
            report(Diagnostic.Create(Rules.UnknownName,
                AttributeLocations.OfName(classAttribute.Data, unknown.Property, unknown.Name, annotated.Cancellation),
                properties, unknown.Name, unknown.Property, "a field", annotated.Type.Name, hint));
        }

        foreach (var field in resolution.Trainable.Where(f => f.Type.TypeKind != TypeKind.Error && !annotated.Types.IsModuleType(f.Type)))
        {
            report(Diagnostic.Create(Rules.UnknownName,
                AttributeLocations.OfName(classAttribute.Data, "Trainable", field.Name, annotated.Cancellation),
                field.Name, "Trainable", "a module field", annotated.Type.Name,
                $"; it is declared '{field.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat)}', and only modules can be trained in full"));
        }

        CheckTargetedTwice(annotated, classAttribute, classValues, report);
    }

    private static void CheckTargetedTwice(AnnotatedClass annotated, WrittenAttribute classAttribute, LoraAttributeData classValues, Action<Diagnostic> report)
    {
        var cancellation = annotated.Cancellation;
        foreach (var name in classValues.Targets.Distinct())
        {
            if (classValues.Exclude.Contains(name))
                report(Diagnostic.Create(Rules.TargetedTwice, AttributeLocations.OfName(classAttribute.Data, "Exclude", name, cancellation),
                    name, "in both Targets and Exclude", "Exclude wins and it is not adapted; remove it from one of the two"));
        }

        foreach (var pair in annotated.FieldAttributes)
        {
            var field = pair.Key;
            if (pair.Value.Values is not { } own)
                continue;
            if (classValues.Exclude.Contains(field.Name))
            {
                report(Diagnostic.Create(Rules.TargetedTwice, AttributeLocations.OfName(classAttribute.Data, "Exclude", field.Name, cancellation),
                    field.Name, "in the class's Exclude but has its own [LoraTarget]", "its own attribute wins and it is adapted; remove it from Exclude, or remove its attribute"));
            }
            else if (classValues.Targets.Contains(field.Name) && Differences(classValues, own) is { Length: > 0 } differences)
            {
                report(Diagnostic.Create(Rules.TargetedTwice, AttributeLocations.OfName(classAttribute.Data, "Targets", field.Name, cancellation),
                    field.Name, $"named in the class's Targets and has its own [LoraTarget] with different options ({differences})",
                    "the field's attribute wins; remove the name from Targets so the options are stated once"));
            }
        }
    }

    /// <summary>"Rank 4 on the field, 8 on the class" for every option the field's attribute sets to
    /// another value than the class's.</summary>
    private static string Differences(LoraAttributeData classValues, LoraAttributeData own)
    {
        var inherited = LoraAttributeData.Combine(classValues, null);
        var parts = new List<string>();
        void Compare(string name, object? mine, object theirs)
        {
            if (mine is not null && !Equals(mine, theirs))
                parts.Add($"{name} {Show(mine)} on the field, {Show(theirs)} on the class");
        }
        Compare("Rank", own.Rank, inherited.Rank);
        Compare("Alpha", own.Alpha, inherited.EffectiveAlpha);
        Compare("Dropout", own.Dropout, inherited.Dropout);
        Compare("UseRsLora", own.UseRsLora, inherited.UseRsLora);
        Compare("Init", own.Init, inherited.Init);
        Compare("UseDora", own.UseDora, inherited.UseDora);
        return string.Join("; ", parts);
    }

    private static string Show(object? value) => value switch
    {
        double d => OptionRules.Format(d),
        bool b => b ? "true" : "false",
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    private static string List(ImmutableArray<string> names) =>
        string.Join(", ", names.Take(8).Select(n => $"'{n}'")) + (names.Length > 8 ? $" and {names.Length - 8} more" : "");

    /// <summary>The field name within a few typos of <paramref name="name"/> (ignoring case), if exactly one is closest.</summary>
    internal static string? ClosestName(string name, ImmutableArray<string> candidates)
    {
        int limit = Math.Max(2, name.Length / 3);
        var ranked = candidates
            .Select(c => (Name: c, Distance: EditDistance(name.ToLowerInvariant(), c.ToLowerInvariant())))
            .Where(c => c.Distance <= limit)
            .OrderBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
        if (ranked.Count == 0 || (ranked.Count > 1 && ranked[1].Distance == ranked[0].Distance))
            return null; // no good candidate, or a tie: better no fix than a wrong one
        return ranked[0].Name;
    }

    /// <summary>Levenshtein distance, with a transposition of neighbours counting as one edit.</summary>
    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }
}
