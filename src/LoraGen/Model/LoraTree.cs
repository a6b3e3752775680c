using static TorchSharp.torch;

namespace LoraGen;

/// <summary>Walks a module tree by its registered children, with PyTorch-style dotted paths.</summary>
internal static class LoraTree
{
    /// <summary>The root and every module below it, parents before children. An adapter layer's
    /// own children (its base layer and adapters) are not visited.</summary>
    public static IEnumerable<(string Path, nn.Module Module)> Modules(nn.Module root)
    {
        var pending = new Stack<(string Path, nn.Module Module)>();
        pending.Push(("", root));
        while (pending.Count > 0)
        {
            var (path, module) = pending.Pop();
            yield return (path, module);
            if (module is LoraLayer)
                continue;
            foreach (var (name, child) in module.named_children().Reverse())
                pending.Push((Join(path, name), child));
        }
    }

    /// <summary>Every annotated class instance in the tree.</summary>
    public static IEnumerable<(string Path, ILoraModule Host)> Hosts(nn.Module root) =>
        Modules(root).Where(m => m.Module is ILoraModule).Select(m => (m.Path, (ILoraModule)m.Module));

    /// <summary>Every adapter layer in the tree.</summary>
    public static IEnumerable<(string Path, LoraLayer Layer)> Layers(nn.Module root) =>
        Modules(root).Where(m => m.Module is LoraLayer).Select(m => (m.Path, (LoraLayer)m.Module));

    /// <summary>Modules whose class carries [LoraTarget] (on itself or a field) but does not implement
    /// ILoraModule: the generator skipped them. Reflection, once per ApplyLora, to explain the mistake.</summary>
    public static IEnumerable<(string Path, nn.Module Module)> AnnotatedWithoutGeneratedCode(nn.Module root) =>
        Modules(root).Where(m => m.Module is not ILoraModule && IsAnnotated(m.Module.GetType()));

    private static bool IsAnnotated(Type type) =>
        type.IsDefined(typeof(LoraTargetAttribute), inherit: false)
        || type.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)
            .Any(f => f.IsDefined(typeof(LoraTargetAttribute), inherit: false));

    public static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;
}
