using static TorchSharp.torch;

namespace LoraGen;

/// <summary>Walks a module tree by its registered children, with PyTorch-style dotted paths.</summary>
internal static class LoraTree
{
    /// <summary>A module below the root with its parent and its name there.</summary>
    public readonly record struct Edge(string Path, nn.Module Parent, string Name, nn.Module Module);

    /// <summary>The root and every module below it, parents before children. An adapter layer's
    /// own children (its base layer and adapters) are not visited.</summary>
    public static IEnumerable<(string Path, nn.Module Module)> Modules(nn.Module root) =>
        Edges(root).Select(edge => (edge.Path, edge.Module)).Prepend(("", root));

    /// <summary>Every module below the root, parents before children, with where it hangs; an adapter layer's own
    /// children are not visited.</summary>
    public static IEnumerable<Edge> Edges(nn.Module root)
    {
        var pending = new Stack<Edge>();
        PushChildren(pending, "", root);
        while (pending.Count > 0)
        {
            var edge = pending.Pop();
            yield return edge;
            PushChildren(pending, edge.Path, edge.Module);
        }
    }

    private static void PushChildren(Stack<Edge> pending, string path, nn.Module module)
    {
        if (module is LoraLayer)
            return;
        foreach (var (name, child) in module.named_children().Reverse())
            pending.Push(new Edge(Join(path, name), module, name, child));
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

    /// <summary>Throws, naming them, when adapters are merged: <paramref name="action"/> needs the base weights
    /// as they are without the adapters.</summary>
    public static void RefuseMerged(nn.Module root, string action)
    {
        var merged = Layers(root).Where(entry => entry.Layer.IsMerged).Select(entry => entry.Path).ToList();
        if (merged.Count > 0)
            throw new InvalidOperationException(
                $"Cannot {action} this model while {string.Join(", ", merged)} {(merged.Count == 1 ? "is" : "are")} merged " +
                "(the base weight holds the adapter's update): call Unmerge() first, or MergeAndUnload() to make the merge permanent.");
    }

    private static bool IsAnnotated(Type type) =>
        type.IsDefined(typeof(LoraTargetAttribute), inherit: false)
        || type.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)
            .Any(f => f.IsDefined(typeof(LoraTargetAttribute), inherit: false));

    public static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;
}
