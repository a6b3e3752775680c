using Microsoft.CodeAnalysis;

namespace LoraGen.SourceShared;

/// <summary>The TorchSharp and LoraGen types the generator and the analyzers look for, resolved once
/// per compilation. Null members mean the compilation does not reference that assembly.</summary>
internal sealed class TorchSharpTypes
{
    public const string LoraTargetAttributeName = "LoraGen.LoraTargetAttribute";

    private TorchSharpTypes(Compilation compilation)
    {
        Module = compilation.GetTypeByMetadataName("TorchSharp.torch+nn+Module");
        GenericModule = compilation.GetTypeByMetadataName("TorchSharp.torch+nn+Module`2");
        Tensor = compilation.GetTypeByMetadataName("TorchSharp.torch+Tensor");
        Linear = compilation.GetTypeByMetadataName("TorchSharp.Modules.Linear");
        Embedding = compilation.GetTypeByMetadataName("TorchSharp.Modules.Embedding");
        Conv1d = compilation.GetTypeByMetadataName("TorchSharp.Modules.Conv1d");
        Conv2d = compilation.GetTypeByMetadataName("TorchSharp.Modules.Conv2d");
        LoraTargetAttribute = compilation.GetTypeByMetadataName(LoraTargetAttributeName);
    }

    public INamedTypeSymbol? Module { get; }
    public INamedTypeSymbol? GenericModule { get; }
    public INamedTypeSymbol? Tensor { get; }
    public INamedTypeSymbol? Linear { get; }
    public INamedTypeSymbol? Embedding { get; }
    public INamedTypeSymbol? Conv1d { get; }
    public INamedTypeSymbol? Conv2d { get; }
    public INamedTypeSymbol? LoraTargetAttribute { get; }

    public static TorchSharpTypes From(Compilation compilation) => new(compilation);

    /// <summary>Whether the wrapper (a <c>Module&lt;Tensor, Tensor&gt;</c>) can be stored in a
    /// variable of <paramref name="type"/>.</summary>
    public bool CanHoldWrapper(ITypeSymbol type)
    {
        if (type.SpecialType == SpecialType.System_Object)
            return true;
        if (SymbolEqualityComparer.Default.Equals(type, Module))
            return true;
        return type is INamedTypeSymbol named
            && SymbolEqualityComparer.Default.Equals(named.OriginalDefinition, GenericModule)
            && named.TypeArguments.Length == 2
            && SymbolEqualityComparer.Default.Equals(named.TypeArguments[0], Tensor)
            && SymbolEqualityComparer.Default.Equals(named.TypeArguments[1], Tensor);
    }

    /// <summary>"Linear", "Embedding", "Conv1d", "Conv2d", or null for any other type.</summary>
    public string? LayerKindOf(ITypeSymbol? type)
    {
        if (type is null) return null;
        if (SymbolEqualityComparer.Default.Equals(type, Linear)) return LayerKinds.Linear;
        if (SymbolEqualityComparer.Default.Equals(type, Embedding)) return LayerKinds.Embedding;
        if (SymbolEqualityComparer.Default.Equals(type, Conv1d)) return LayerKinds.Conv1d;
        if (SymbolEqualityComparer.Default.Equals(type, Conv2d)) return LayerKinds.Conv2d;
        return null;
    }

    /// <summary>Whether <paramref name="type"/> derives from <c>torch.nn.Module</c>.</summary>
    public bool IsModule(INamedTypeSymbol type)
    {
        for (var current = type.BaseType; current is not null; current = current.BaseType)
            if (SymbolEqualityComparer.Default.Equals(current, Module))
                return true;
        return false;
    }

    /// <summary>Whether <paramref name="type"/> is a TorchSharp module type (a field that holds a layer).</summary>
    public bool IsModuleType(ITypeSymbol type) =>
        type is INamedTypeSymbol named && (SymbolEqualityComparer.Default.Equals(named, Module) || IsModule(named));
}
