using System;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;

namespace LoraGen.Analyzers;

/// <summary>
/// LORA0007 (rank not low), LORA0008 (no savings) and LORA0013 (groups do not divide the rank), for
/// targets whose sizes are compile-time constants. Sizes the compiler cannot see stay unchecked here;
/// ApplyLora checks them when the model runs.
/// </summary>
internal static class SizeRules
{
    /// <summary>Above this a size is surely not a constant a person meant; the arithmetic would overflow.</summary>
    private const long MaxSize = int.MaxValue;

    public static void Check(AnnotatedClass annotated, TargetResolution resolution, Action<Diagnostic> report)
    {
        foreach (var target in resolution.Targets)
        {
            // LORA0006 for an option the layer kind does not support: PiSSA and OLoRA (Init 2, 3) decompose a
            // Linear weight; PEFT defines them for Linear only, and ApplyLora refuses them elsewhere.
            if (target.Kind is { } targetKind && targetKind != LayerKinds.Linear && target.Options.Init is 2 or 3)
                report(Diagnostic.Create(Rules.OptionOutOfRange, target.Field.Locations.FirstOrDefault() ?? annotated.Location,
                    "Init", target.Options.Init == 2 ? "LoraInit.Pissa" : "LoraInit.Olora",
                    $"it starts the adapter from the decomposition of a Linear weight (PEFT defines it for Linear layers only), but '{target.Field.Name}' holds a {targetKind}; use LoraInit.Default or LoraInit.Gaussian on it"));
            if (target.Kind is not { } kind || target.Creation is not { HasSizes: true } creation)
                continue;
            long inFeatures = creation.InFeatures!.Value, outFeatures = creation.OutFeatures!.Value, kernel = creation.KernelElements!.Value;
            if (new[] { inFeatures, outFeatures, kernel }.Any(size => size < 1 || size > MaxSize))
                continue; // the layer's own constructor rejects these
            var budget = new LayerBudget(inFeatures, outFeatures, kernel);
            var field = target.Field;
            int rank = target.Options.Rank;
            if (rank < 1)
                continue; // LORA0006
            var location = field.Locations.FirstOrDefault() ?? annotated.Location;
            string layer = LayerDescription.Describe(kind, inFeatures, outFeatures, kernel);
            var properties = FixValues(budget);
            string remedy = LayerDescription.Remedy(budget);

            // A grouped convolution's weight is out·(in/groups)·k, and ApplyLora refuses it anyway:
            // only LORA0013 speaks for it.
            bool grouped = creation.Groups is > 1;
            if (!grouped && rank >= budget.FullRank)
            {
                string bound = kind switch
                {
                    LayerKinds.Embedding => "min(num, dim)",
                    LayerKinds.Linear => "min(in, out)",
                    _ => "min(in·k, out)",
                };
                report(Diagnostic.Create(Rules.RankNotLow, location, properties,
                    Count(rank), field.Name, layer, $"{bound} = {Count(budget.FullRank)}", remedy));
            }
            if (!grouped && !budget.Saves(rank))
            {
                report(Diagnostic.Create(Rules.NoSavings, location, properties,
                    Count(rank), field.Name, layer, LayerDescription.NoSavings(kind, budget, rank), remedy));
            }
            if (creation.Groups is > 1 and <= MaxSize && rank % creation.Groups.Value != 0)
            {
                long groups = creation.Groups.Value;
                long suggestion = rank < groups ? groups : rank / groups * groups;
                report(Diagnostic.Create(Rules.GroupsDoNotDivideRank, location,
                    field.Name, kind, Count(groups), Count(rank), Count(suggestion)));
            }
        }
    }

    /// <summary>What the LORA0007/LORA0008 fix needs: the rank to set.</summary>
    private static ImmutableDictionary<string, string?> FixValues(LayerBudget budget)
    {
        if (budget.HalfSavingRank < 1)
            return ImmutableDictionary<string, string?>.Empty; // no rank saves half: the fix has nothing to offer
        return ImmutableDictionary<string, string?>.Empty
            .Add(FixProperties.SuggestedRank, budget.HalfSavingRank.ToString(CultureInfo.InvariantCulture));
    }

    private static string Count(long value) => LayerDescription.Count(value);
}
