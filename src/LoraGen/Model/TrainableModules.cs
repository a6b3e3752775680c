using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// The modules trained in full next to each adapter (PEFT's <c>modules_to_save</c>). With annotations they are the
/// hosts' <c>Trainable</c> fields; with run-time targeting the config names them. The choice is remembered here, per
/// model and adapter, from ApplyLora, AddAdapter or LoadAdapter on, for LoraParameters, SaveAdapter and freezing.
/// LoraGen trains such a module in place (PEFT keeps a copy per adapter), so a module belongs to one adapter at most.
/// </summary>
internal static class TrainableModules
{
    private static readonly ConditionalWeakTable<nn.Module, ImmutableDictionary<string, IReadOnlyList<string>>> Chosen = new();

    /// <summary>Everything remembered for <paramref name="model"/>: adapter → module paths; null when nothing is.</summary>
    public static ImmutableDictionary<string, IReadOnlyList<string>>? Snapshot(nn.Module model) =>
        Chosen.TryGetValue(model, out var chosen) ? chosen : null;

    /// <summary>Puts back a <see cref="Snapshot"/> (an undone apply).</summary>
    public static void Restore(nn.Module model, ImmutableDictionary<string, IReadOnlyList<string>>? snapshot)
    {
        if (snapshot is null)
            Chosen.Remove(model);
        else
            Chosen.AddOrUpdate(model, snapshot);
    }

    /// <summary>Remembers the trainable modules of adapter <paramref name="adapter"/>.</summary>
    /// <exception cref="InvalidOperationException">A module is already trained in full for another adapter.</exception>
    public static void Remember(nn.Module model, string adapter, IReadOnlyList<string> paths)
    {
        var chosen = Snapshot(model) ?? ImmutableDictionary<string, IReadOnlyList<string>>.Empty.WithComparers(StringComparer.Ordinal);
        foreach (var (other, taken) in chosen)
        {
            if (other == adapter)
                continue;
            var shared = paths.Intersect(taken, StringComparer.Ordinal).ToList();
            if (shared.Count > 0)
                throw new InvalidOperationException(
                    $"{string.Join(", ", shared.Select(p => $"'{p}'"))} {(shared.Count == 1 ? "is" : "are")} already trained in full for adapter " +
                    $"'{other}'. LoraGen trains such modules (modules_to_save, Trainable fields) in place, not in a copy per adapter as " +
                    $"PEFT does, so one module can belong to one adapter only. Give adapter '{adapter}' no modules_to_save " +
                    "(a run-time AdapterConfig without them), or delete the other adapter first. Nothing was changed.");
        }
        Chosen.AddOrUpdate(model, chosen.SetItem(adapter, paths));
    }

    /// <summary>Forgets adapter <paramref name="adapter"/>'s modules (a deleted adapter).</summary>
    public static void Forget(nn.Module model, string adapter)
    {
        if (Snapshot(model) is { } chosen)
            Chosen.AddOrUpdate(model, chosen.Remove(adapter));
    }

    /// <summary>Adapter <paramref name="adapter"/>'s trainable modules with their paths: the remembered ones, else (for the
    /// default adapter of an annotated model) the hosts' <c>Trainable</c> fields.</summary>
    public static IEnumerable<(string Path, nn.Module Module)> Of(nn.Module model, string adapter)
    {
        var chosen = Snapshot(model);
        if (chosen is null)
            return adapter == LoraLayer.DefaultAdapter ? OfAnnotations(model) : [];
        if (!chosen.TryGetValue(adapter, out var paths))
            return [];
        var byPath = LoraTree.Modules(model).ToDictionary(entry => entry.Path, entry => entry.Module, StringComparer.Ordinal);
        return paths.Where(byPath.ContainsKey).Select(path => (path, byPath[path]));
    }

    /// <summary>The hosts' <c>Trainable</c> fields.</summary>
    public static IEnumerable<(string Path, nn.Module Module)> OfAnnotations(nn.Module model) =>
        LoraTree.Hosts(model).SelectMany(entry => entry.Host.TrainableFields
            .Select(field => (LoraTree.Join(entry.Path, field), entry.Host.GetTrainableField(field))));

    /// <summary>Every parameter of adapter <paramref name="adapter"/>'s trainable modules, with its path in the model.</summary>
    public static IEnumerable<(string Path, Parameter Parameter)> Parameters(nn.Module model, string adapter) =>
        Of(model, adapter).SelectMany(entry => entry.Module.named_parameters().Select(p => (LoraTree.Join(entry.Path, p.name), p.parameter)));
}
