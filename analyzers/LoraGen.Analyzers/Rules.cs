using Microsoft.CodeAnalysis;

namespace LoraGen.Analyzers;

/// <summary>
/// The LoraGen diagnostics. IDs, severities and meanings are fixed by the catalogue in the design;
/// each has a page at docs/diagnostics/&lt;ID&gt;.md, which is its help link (<see cref="HelpLink"/>).
/// </summary>
internal static class Rules
{
    private const string Category = "LoraGen";
    private const string HelpBase = "https://github.com/loragen/loragen/blob/main/docs/diagnostics/";

    /// <summary>The page that explains <paramref name="id"/>: every rule's help link, and nowhere else.</summary>
    public static string HelpLink(string id) => HelpBase + id + ".md";

    public static readonly DiagnosticDescriptor NotPartial = Rule(
        "LORA0001", DiagnosticSeverity.Error,
        "[LoraTarget] class is not partial",
        "'{0}' carries [LoraTarget] but {1} not declared partial, so the generator cannot add its LoRA code; add 'partial'");

    public static readonly DiagnosticDescriptor NotAModule = Rule(
        "LORA0002", DiagnosticSeverity.Error,
        "[LoraTarget] class is not a TorchSharp module",
        "'{0}' carries [LoraTarget] but does not derive from torch.nn.Module; LoRA adapts the layers of a module, so derive it from Module<Tensor, Tensor> or another Module type");

    public static readonly DiagnosticDescriptor UnknownName = Rule(
        "LORA0003", DiagnosticSeverity.Error,
        "Name in Targets, Exclude or Trainable is not a field",
        "'{0}' in {1} is not {2} of '{3}'{4}");

    public static readonly DiagnosticDescriptor UnsupportedLayer = Rule(
        "LORA0004", DiagnosticSeverity.Error,
        "Targeted field does not hold a supported layer",
        "'{0}' is a LoRA target but holds {1}, which LoRA cannot adapt (supported: Linear, Embedding, Conv1d, Conv2d); {2}");

    public static readonly DiagnosticDescriptor CannotHoldWrapper = Rule(
        "LORA0005", DiagnosticSeverity.Error,
        "Targeted field cannot hold the LoRA wrapper",
        "'{0}' is a LoRA target but {1}, so the wrapper cannot be stored in it; {2}");

    public static readonly DiagnosticDescriptor OptionOutOfRange = Rule(
        "LORA0006", DiagnosticSeverity.Error,
        "LoRA option out of range",
        "{0} = {1} is not valid: {2}");

    public static readonly DiagnosticDescriptor RankNotLow = Rule(
        "LORA0007", DiagnosticSeverity.Warning,
        "Rank leaves no low-rank restriction",
        "Rank {0} on '{1}' ({2}) is at least {3}, so B·A can express any update and LoRA restricts nothing; {4}");

    public static readonly DiagnosticDescriptor NoSavings = Rule(
        "LORA0008", DiagnosticSeverity.Warning,
        "Adapter cancels the parameter savings",
        "Rank {0} on '{1}' ({2}) {3}; {4}");

    public static readonly DiagnosticDescriptor TargetedTwice = Rule(
        "LORA0009", DiagnosticSeverity.Warning,
        "Field targeted twice with different options",
        "'{0}' is {1}; {2}");

    public static readonly DiagnosticDescriptor NothingToAdapt = Rule(
        "LORA0010", DiagnosticSeverity.Warning,
        "[LoraTarget] class has nothing to adapt",
        "'{0}' carries [LoraTarget] but has nothing to adapt: {1}");

    public static readonly DiagnosticDescriptor AdaptedAndTrainable = Rule(
        "LORA0011", DiagnosticSeverity.Warning,
        "Field is both adapted and trained in full",
        "'{0}' is adapted and also listed in Trainable: its base weights train in full, so the adapter saves nothing; remove it from Trainable or from the targets");

    public static readonly DiagnosticDescriptor SmallScaling = Rule(
        "LORA0012", DiagnosticSeverity.Info,
        "Small alpha/rank scaling for a large rank",
        "Alpha {0} / Rank {1} scales the adapter's output by {2}, which damps its updates at this rank; consider Alpha = {3} (2·Rank, scaling 2) or UseRsLora = true (scaling Alpha/√Rank = {4})");

    public static readonly DiagnosticDescriptor GroupsDoNotDivideRank = Rule(
        "LORA0013", DiagnosticSeverity.Warning,
        "Conv groups do not divide the rank",
        "'{0}' is a {1} with groups = {2}, which does not divide rank {3}; a grouped convolution's adapter needs a rank that is a multiple of {2}, e.g. {4}");

    public static readonly DiagnosticDescriptor QuantizedBaseRewritten = Rule(
        "LORA0014", DiagnosticSeverity.Error,
        "Quantized base with DoRA or PiSSA/OLoRA",
        "Quantize asks for a quantized (QLoRA) base on {0}, but {1} is not supported over one: {2}; drop Quantize, or use plain LoRA (no UseDora, Init = Default or Gaussian) on a quantized base");

    private static DiagnosticDescriptor Rule(string id, DiagnosticSeverity severity, string title, string message) =>
        new(id, title, message, Category, severity, isEnabledByDefault: true, helpLinkUri: HelpLink(id));
}

/// <summary>Keys of the values a diagnostic carries for its code fix.</summary>
internal static class FixProperties
{
    /// <summary>LORA0003: the field name closest to the unknown one.</summary>
    public const string ClosestName = "ClosestName";

    /// <summary>LORA0007/LORA0008: the largest rank that keeps at least half the layer's parameters saved.</summary>
    public const string SuggestedRank = "SuggestedRank";

    /// <summary>LORA0005: present when the field is <c>readonly</c>.</summary>
    public const string RemoveReadOnly = "RemoveReadOnly";

    /// <summary>LORA0005: present when the field's declared type cannot hold the wrapper.</summary>
    public const string DeclareModule = "DeclareModule";
}
