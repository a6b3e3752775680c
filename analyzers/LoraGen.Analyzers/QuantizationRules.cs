using System;
using System.Collections.Generic;
using System.Linq;
using LoraGen.SourceShared;
using Microsoft.CodeAnalysis;

namespace LoraGen.Analyzers;

/// <summary>LORA0014: a quantized base (<c>Quantize</c>) asked for together with DoRA or a PiSSA/OLoRA init, which the
/// runtime refuses (DoRA needs the weight's norm every step and rescales the whole weight when merged; PiSSA/OLoRA
/// rewrite the base to a residual that would have to be re-quantized).</summary>
internal static class QuantizationRules
{
    public static void Check(AnnotatedClass annotated, TargetResolution resolution, Action<Diagnostic> report)
    {
        // One diagnostic per attribute that completes the conflict: a class attribute that sets both reports once,
        // not once per field it adapts.
        var reported = new HashSet<AttributeData>();
        foreach (var target in resolution.Targets)
        {
            var options = target.Options;
            if (!options.QuantizesWhatItRewrites || target.Kind is not (null or LayerKinds.Linear))
                continue;
            var own = annotated.AttributeOf(target.Field);
            bool ownSetsEither = own?.Values is { } values && (values.Quantize is not null || values.UseDora is not null || values.Init is not null);
            var attribute = ownSetsEither ? own! : annotated.ClassAttribute ?? own;
            if (attribute is null || !reported.Add(attribute.Data))
                continue;
            string rewrite = options.UseDora ? "UseDora = true" : $"Init = LoraInit.{(options.Init == 2 ? "Pissa" : "Olora")}";
            string what = ReferenceEquals(attribute, annotated.ClassAttribute) && !ownSetsEither
                ? $"the fields of {annotated.Type.Name}"
                : $"'{target.Field.Name}'";
            string property = Written(attribute, "Quantize") ? "Quantize" : options.UseDora ? "UseDora" : "Init";
            report(Diagnostic.Create(Rules.QuantizedBaseRewritten,
                AttributeLocations.Of(attribute.Data, property, annotated.Cancellation), what, rewrite,
                options.UseDora
                    ? "DoRA needs the base weight's norm at every step and rescales the whole weight when merged"
                    : "it rewrites the base weight to the residual W - B·A, which would have to be re-quantized"));
        }
    }

    private static bool Written(WrittenAttribute attribute, string property) =>
        attribute.Data.NamedArguments.Any(argument => argument.Key == property);
}
