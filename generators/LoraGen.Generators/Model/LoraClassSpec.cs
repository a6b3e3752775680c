namespace LoraGen.Generators.Model;

/// <summary>Everything the emitter needs for one [LoraTarget] class: names, strings and numbers only.</summary>
/// <param name="Namespace">The containing namespace, or null for the global namespace.</param>
/// <param name="ContainingTypes">Outermost first.</param>
/// <param name="Type">The annotated class itself.</param>
/// <param name="Targets">The fields to adapt, in declaration order.</param>
/// <param name="TrainableFields">Fields trained in full.</param>
internal sealed record LoraClassSpec(
    string? Namespace,
    EquatableArray<TypeDeclarationSpec> ContainingTypes,
    TypeDeclarationSpec Type,
    EquatableArray<LoraTargetSpec> Targets,
    EquatableArray<string> TrainableFields)
{
    /// <summary><c>Namespace.Outer.Type.LoraGen.g.cs</c>; generic arity as <c>_1</c>.</summary>
    public string HintName
    {
        get
        {
            var parts = new System.Collections.Generic.List<string>();
            if (Namespace is not null) parts.Add(Namespace);
            foreach (var containing in ContainingTypes) parts.Add(containing.HintPart);
            parts.Add(Type.HintPart);
            return string.Join(".", parts) + ".LoraGen.g.cs";
        }
    }
}

/// <summary>A type declaration to re-emit as partial: <c>class Block&lt;T&gt;</c>.</summary>
/// <param name="Keyword">"class", "struct", "record", "record struct" or "interface".</param>
/// <param name="Name">The type's name without type parameters.</param>
/// <param name="TypeParameters">Type parameter names, in order.</param>
internal sealed record TypeDeclarationSpec(string Keyword, string Name, EquatableArray<string> TypeParameters)
{
    public string NameWithTypeParameters =>
        TypeParameters.Length == 0 ? Name : Name + "<" + string.Join(", ", TypeParameters) + ">";

    public string HintPart => TypeParameters.Length == 0 ? Name : Name + "_" + TypeParameters.Length;
}

/// <summary>One field to adapt, with its options and what the compiler knows of its layer.</summary>
/// <param name="Field">The field's name.</param>
/// <param name="Kind">"Linear", "Embedding", "Conv1d", "Conv2d", or null when only the run time knows.</param>
/// <param name="InFeatures">Constant input size, when known.</param>
/// <param name="OutFeatures">Constant output size, when known.</param>
/// <param name="KernelElements">Constant kernel element count (1 for Linear and Embedding), when known.</param>
internal sealed record LoraTargetSpec(
    string Field,
    int Rank,
    double? Alpha,
    double Dropout,
    bool UseRsLora,
    int Init,
    string? Kind,
    long? InFeatures,
    long? OutFeatures,
    long? KernelElements,
    bool UseDora = false,
    int Quantize = 0);
