using System.Runtime.CompilerServices;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// The modules trained in full next to the adapters (PEFT's <c>modules_to_save</c>). With annotations they are the
/// hosts' <c>Trainable</c> fields; with run-time targeting the config names them, and the paths are remembered here,
/// per model, from ApplyLora or LoadAdapter on, for LoraParameters, SaveAdapter and freezing.
/// </summary>
internal static class TrainableModules
{
    private static readonly ConditionalWeakTable<nn.Module, IReadOnlyList<string>> Chosen = new();

    /// <summary>Remembers the trainable modules a plan chose for <paramref name="model"/>.</summary>
    public static void Remember(nn.Module model, IReadOnlyList<string> paths) => Chosen.AddOrUpdate(model, paths);

    /// <summary>Forgets them (an undone apply).</summary>
    public static void Forget(nn.Module model) => Chosen.Remove(model);

    /// <summary>The paths remembered for <paramref name="model"/>, or null when a plan never chose any.</summary>
    public static IReadOnlyList<string>? Remembered(nn.Module model) => Chosen.TryGetValue(model, out var paths) ? paths : null;

    /// <summary>The trainable modules with their paths: the remembered ones, else the annotated hosts' <c>Trainable</c> fields.</summary>
    public static IEnumerable<(string Path, nn.Module Module)> Of(nn.Module model)
    {
        if (Remembered(model) is not { } paths)
            return OfAnnotations(model);
        var byPath = LoraTree.Modules(model).ToDictionary(entry => entry.Path, entry => entry.Module, StringComparer.Ordinal);
        return paths.Where(byPath.ContainsKey).Select(path => (path, byPath[path]));
    }

    /// <summary>The hosts' <c>Trainable</c> fields.</summary>
    public static IEnumerable<(string Path, nn.Module Module)> OfAnnotations(nn.Module model) =>
        LoraTree.Hosts(model).SelectMany(entry => entry.Host.TrainableFields
            .Select(field => (LoraTree.Join(entry.Path, field), entry.Host.GetTrainableField(field))));

    /// <summary>Every parameter of the trainable modules, with its path in the model.</summary>
    public static IEnumerable<(string Path, Parameter Parameter)> Parameters(nn.Module model) =>
        Of(model).SelectMany(entry => entry.Module.named_parameters().Select(p => (LoraTree.Join(entry.Path, p.name), p.parameter)));
}
