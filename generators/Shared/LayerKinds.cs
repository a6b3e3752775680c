namespace LoraGen.SourceShared;

/// <summary>The names of the supported layer kinds, as in <c>LoraGen.LoraLayerKind</c>.</summary>
internal static class LayerKinds
{
    public const string Linear = "Linear";
    public const string Embedding = "Embedding";
    public const string Conv1d = "Conv1d";
    public const string Conv2d = "Conv2d";
}
