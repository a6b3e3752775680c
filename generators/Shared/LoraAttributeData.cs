using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace LoraGen.SourceShared;

/// <summary>
/// The options one <c>[LoraTarget]</c> attribute sets. Only the named arguments actually written are
/// set (null otherwise), so a field attribute overrides exactly what it names, like PEFT's
/// <c>rank_pattern</c> / <c>alpha_pattern</c>.
/// </summary>
internal sealed class LoraAttributeData
{
    public int? Rank { get; private set; }
    public double? Alpha { get; private set; }
    public double? Dropout { get; private set; }
    public bool? UseRsLora { get; private set; }
    public int? Init { get; private set; }
    public bool? UseDora { get; private set; }
    public int? Quantize { get; private set; }
    public ImmutableArray<string> Targets { get; private set; } = ImmutableArray<string>.Empty;
    public ImmutableArray<string> Exclude { get; private set; } = ImmutableArray<string>.Empty;
    public ImmutableArray<string> Trainable { get; private set; } = ImmutableArray<string>.Empty;

    /// <summary>Reads the attribute, or returns null when any argument is missing or malformed
    /// (code being typed): nothing is generated from half an attribute.</summary>
    public static LoraAttributeData? Read(AttributeData attribute)
    {
        if (attribute.AttributeClass is null || attribute.AttributeClass.TypeKind == TypeKind.Error)
            return null;
        if (attribute.ConstructorArguments.Length != 0)
            return null;
        var data = new LoraAttributeData();
        foreach (var argument in attribute.NamedArguments)
        {
            var value = argument.Value;
            if (value.Kind == TypedConstantKind.Error)
                return null;
            switch (argument.Key)
            {
                case "Rank" when value.Value is int rank: data.Rank = rank; break;
                case "Alpha" when value.Value is double alpha: data.Alpha = alpha; break;
                case "Dropout" when value.Value is double dropout: data.Dropout = dropout; break;
                case "UseRsLora" when value.Value is bool rs: data.UseRsLora = rs; break;
                case "Init" when value.Value is int init: data.Init = init; break;
                case "UseDora" when value.Value is bool dora: data.UseDora = dora; break;
                case "Quantize" when value.Value is int quantize: data.Quantize = quantize; break;
                case "Targets" when ReadNames(value) is { } names: data.Targets = names; break;
                case "Exclude" when ReadNames(value) is { } names: data.Exclude = names; break;
                case "Trainable" when ReadNames(value) is { } names: data.Trainable = names; break;
                default: return null;
            }
        }
        return data;
    }

    /// <summary>The options in effect for a field: the field's attribute where it sets a value, else the class's.</summary>
    public static EffectiveOptions Combine(LoraAttributeData? classOptions, LoraAttributeData? fieldOptions)
    {
        int rank = fieldOptions?.Rank ?? classOptions?.Rank ?? 8;
        return new EffectiveOptions(
            rank,
            fieldOptions?.Alpha ?? classOptions?.Alpha,
            fieldOptions?.Dropout ?? classOptions?.Dropout ?? 0,
            fieldOptions?.UseRsLora ?? classOptions?.UseRsLora ?? false,
            fieldOptions?.Init ?? classOptions?.Init ?? 0,
            fieldOptions?.UseDora ?? classOptions?.UseDora ?? false,
            fieldOptions?.Quantize ?? classOptions?.Quantize ?? 0);
    }

    private static ImmutableArray<string>? ReadNames(TypedConstant value)
    {
        if (value.Kind != TypedConstantKind.Array || value.IsNull)
            return value.IsNull ? ImmutableArray<string>.Empty : null;
        var names = ImmutableArray.CreateBuilder<string>(value.Values.Length);
        foreach (var item in value.Values)
        {
            if (item.Value is not string name)
                return null;
            names.Add(name);
        }
        return names.ToImmutable();
    }
}

/// <summary>The options one target ends up with. <see cref="Alpha"/> null means "same as the rank"; <see cref="Quantize"/>
/// is <c>LoraGen.QuantizationKind</c>'s value (0: float).</summary>
internal readonly record struct EffectiveOptions(int Rank, double? Alpha, double Dropout, bool UseRsLora, int Init, bool UseDora = false, int Quantize = 0)
{
    /// <summary>Whether the options ask for a quantized base together with something that rewrites or rescales it
    /// (DoRA, PiSSA/OLoRA init): LORA0014.</summary>
    public bool QuantizesWhatItRewrites => Quantize != 0 && (UseDora || Init is 2 or 3);

    public double EffectiveAlpha => Alpha ?? Rank;
    public double Scaling => UseRsLora ? EffectiveAlpha / System.Math.Sqrt(Rank) : EffectiveAlpha / Rank;
}
