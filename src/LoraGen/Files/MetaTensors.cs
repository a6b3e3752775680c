using System.Reflection;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// The tensors of a model built on the meta device (<see cref="EmptyWeights"/>), and how to give one CPU memory: a new
/// CPU tensor of the same shape and dtype takes its place in the module that owns it (the registry entry, and the
/// property or every field that holds it), so paths and parameter order stay what they were.
/// </summary>
internal sealed class MetaTensors
{
    private static readonly FieldInfo Parameters = typeof(nn.Module).GetField("_internal_params", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp's Module._internal_params is gone; loading into a meta-device model needs it.");
    private static readonly FieldInfo Buffers = typeof(nn.Module).GetField("_internal_buffers", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp's Module._internal_buffers is gone; loading into a meta-device model needs it.");

    private readonly Dictionary<Tensor, (nn.Module Owner, string Name, string Path, bool IsParameter)> owners = new(ReferenceEqualityComparer.Instance);

    private MetaTensors()
    {
    }

    public bool IsEmpty => owners.Count == 0;

    /// <summary>For <see cref="TensorLoader.CheckAndCopy"/>: null when the model has no meta tensor.</summary>
    public Func<Tensor, Tensor>? DestinationOrNull => IsEmpty ? null : Destination;

    public static MetaTensors Of(nn.Module model)
    {
        var found = new MetaTensors();
        // named_modules leaves out the model itself, which may own tensors too.
        foreach (var (path, module) in model.named_modules().Prepend(("", model)))
        {
            string prefix = path.Length == 0 ? "" : path + ".";
            foreach (var (name, parameter) in module.named_parameters(recurse: false))
                if (parameter.is_meta)
                    found.owners.TryAdd(parameter, (module, name, prefix + name, true));
            foreach (var (name, buffer) in module.named_buffers(recurse: false))
                if (buffer.is_meta)
                    found.owners.TryAdd(buffer, (module, name, prefix + name, false));
        }
        return found;
    }

    /// <summary>The meta tensors that are not among <paramref name="loaded"/> and not under one of
    /// <paramref name="replacedModules"/> (module paths), as one problem line (none if there are none): what a load
    /// would leave without a value.</summary>
    public List<string> LeftEmpty(IEnumerable<Tensor> loaded, IReadOnlyList<string> replacedModules)
    {
        var filled = loaded.ToHashSet(ReferenceEqualityComparer.Instance);
        var empty = owners.Where(entry => !filled.Contains(entry.Key))
            .Select(entry => entry.Value.Path)
            .Where(path => !replacedModules.Any(module => path.StartsWith(module + ".", StringComparison.Ordinal)))
            .ToList();
        return empty.Count == 0 ? [] :
        [
            $"{string.Join(", ", empty)}: built without weights (EmptyWeights, on the meta device) and this load gives " +
            $"{(empty.Count == 1 ? "it" : "them")} no value; put {(empty.Count == 1 ? "it" : "them")} in the checkpoint, " +
            "or create it on the CPU (device: CPU) in the constructor",
        ];
    }

    /// <summary>The tensor to copy a value into: <paramref name="tensor"/> itself, or for a meta tensor of the model a
    /// new CPU tensor put in its place (once).</summary>
    public Tensor Destination(Tensor tensor)
    {
        if (!tensor.is_meta || !owners.Remove(tensor, out var owner))
            return tensor;
        var memory = empty(tensor.shape, tensor.dtype, CPU).DetachFromDisposeScope();
        if (owner.IsParameter)
        {
            var parameter = new Parameter(memory, ((Parameter)tensor).requires_grad);
            Install(owner.Owner, owner.Name, tensor, parameter, isParameter: true);
            return parameter;
        }
        Install(owner.Owner, owner.Name, tensor, memory, isParameter: false);
        return memory;
    }

    // A layer's own setter where it has one (TorchSharp's native layers, e.g. Embedding, hand the tensor to libtorch
    // there); otherwise the registry entry in place (keeping the order) and every field that held the meta tensor.
    private static void Install(nn.Module module, string name, Tensor old, Tensor replacement, bool isParameter)
    {
        var property = module.GetType().GetProperty(name, BindingFlags.Instance | BindingFlags.Public);
        if (property is { CanWrite: true } && property.PropertyType.IsAssignableFrom(replacement.GetType()) &&
            property.GetIndexParameters().Length == 0)
        {
            property.SetValue(module, replacement);
            old.Dispose();
            return;
        }
        if (isParameter)
            ((TorchSharp.Utils.OrderedDict<string, Parameter>)Parameters.GetValue(module)!)[name] = (Parameter)replacement;
        else
        {
            var buffers = (TorchSharp.Utils.OrderedDict<string, (Tensor, bool)>)Buffers.GetValue(module)!;
            buffers[name] = (replacement, buffers[name].Item2);
        }
        for (var type = module.GetType(); type is not null && type != typeof(object); type = type.BaseType)
        {
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                if (field.FieldType.IsAssignableFrom(replacement.GetType()) && ReferenceEquals(field.GetValue(module), old))
                    field.SetValue(module, replacement);
        }
        old.Dispose();
    }
}
