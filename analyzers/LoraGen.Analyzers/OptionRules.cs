using System;
using System.Globalization;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;

namespace LoraGen.Analyzers;

/// <summary>LORA0006 (an option out of range) and LORA0012 (small scaling for a large rank), per attribute as written.</summary>
internal static class OptionRules
{
    /// <summary>From this rank on, a scaling below <see cref="SmallScaling"/> is worth a hint.</summary>
    public const int LargeRank = 32;
    public const double SmallScaling = 0.5;

    public static void Check(AnnotatedClass annotated, Action<Diagnostic> report)
    {
        var classValues = annotated.ClassAttribute?.Values;
        foreach (var attribute in annotated.Attributes)
        {
            if (attribute.Values is not { } values)
                continue;
            bool valid = CheckRanges(attribute.Data, values, annotated, report);
            bool isClass = ReferenceEquals(attribute, annotated.ClassAttribute);
            if (valid && (values.Rank is not null || values.Alpha is not null || values.UseRsLora is not null))
                CheckScaling(attribute.Data, LoraAttributeData.Combine(isClass ? null : classValues, values), annotated, report);
        }
    }

    private static bool CheckRanges(AttributeData data, LoraAttributeData values, AnnotatedClass annotated, Action<Diagnostic> report)
    {
        bool valid = true;
        void Reject(string property, double value, string why)
        {
            valid = false;
            report(Diagnostic.Create(Rules.OptionOutOfRange, AttributeLocations.Of(data, property, annotated.Cancellation),
                property, Format(value), why));
        }

        if (values.Rank is < 1)
            Reject("Rank", values.Rank.Value, "the rank must be at least 1");
        if (values.Alpha is { } alpha && !(alpha > 0 && !double.IsInfinity(alpha)))
            Reject("Alpha", alpha, "alpha must be a finite number above 0 (scaling is Alpha/Rank; leave it out for Alpha = Rank)");
        if (values.Dropout is { } dropout && !(dropout >= 0 && dropout < 1))
            Reject("Dropout", dropout, "dropout is a probability in [0, 1): 0 turns it off");
        return valid;
    }

    private static void CheckScaling(AttributeData data, EffectiveOptions options, AnnotatedClass annotated, Action<Diagnostic> report)
    {
        if (options.UseRsLora || options.Rank < LargeRank || options.Scaling >= SmallScaling)
            return;
        var location = AttributeLocations.Argument(data, "Alpha", annotated.Cancellation) is not null
            ? AttributeLocations.Of(data, "Alpha", annotated.Cancellation)
            : AttributeLocations.Of(data, "Rank", annotated.Cancellation);
        report(Diagnostic.Create(Rules.SmallScaling, location,
            Format(options.EffectiveAlpha), options.Rank.ToString(CultureInfo.InvariantCulture), Format(options.Scaling),
            (2 * options.Rank).ToString(CultureInfo.InvariantCulture), Format(options.EffectiveAlpha / Math.Sqrt(options.Rank))));
    }

    internal static string Format(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);
}
