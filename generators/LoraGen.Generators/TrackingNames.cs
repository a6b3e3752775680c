namespace LoraGen.Generators;

/// <summary>Names of the pipeline's steps, so tests can check each one stays cached.</summary>
public static class TrackingNames
{
    /// <summary>Specs of classes that carry [LoraTarget].</summary>
    public const string ClassSpecs = nameof(ClassSpecs);

    /// <summary>Specs of classes that carry [LoraTarget] only on fields.</summary>
    public const string FieldOwnerSpecs = nameof(FieldOwnerSpecs);
}
