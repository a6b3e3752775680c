using System.Reflection;
using System.Runtime.InteropServices;
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

    // Every module slot holding each meta tensor (a tied weight, e.g. an LM head sharing the embedding, has several),
    // and the CPU tensors already put in place of one, by the tensor's identity (see Identity).
    private readonly Dictionary<IntPtr, List<(nn.Module Owner, string Name, string Path, bool IsParameter, Tensor Meta)>> owners = [];
    private readonly Dictionary<IntPtr, Tensor> replaced = [];
    // The identity of each tensor the load will copy into, taken while every wrapper is alive: installing a replacement
    // through a layer's setter may dispose the old wrapper another key still refers to.
    private readonly Dictionary<Tensor, IntPtr> loaded = new(ReferenceEqualityComparer.Instance);

    private MetaTensors()
    {
    }


    /// <summary>The meta tensors of <paramref name="model"/>, and which of them <paramref name="loading"/> (the tensors
    /// the load will copy into) gives a value.</summary>
    public static MetaTensors Of(nn.Module model, IEnumerable<Tensor> loading)
    {
        var found = new MetaTensors();
        foreach (var tensor in loading)
            if (tensor.is_meta)
                found.loaded.TryAdd(tensor, Identity(tensor));
        // named_modules leaves out the model itself, which may own tensors too.
        foreach (var (path, module) in model.named_modules().Prepend(("", model)))
        {
            string prefix = path.Length == 0 ? "" : path + ".";
            foreach (var (name, parameter) in module.named_parameters(recurse: false))
                if (parameter.is_meta)
                    found.Add(parameter, (module, name, prefix + name, true, parameter));
            foreach (var (name, buffer) in module.named_buffers(recurse: false))
                if (buffer.is_meta)
                    found.Add(buffer, (module, name, prefix + name, false, buffer));
        }
        return found;
    }

    // Which tensor a wrapper stands for. TorchSharp hands out a new wrapper (and a new at::Tensor handle) for the same
    // tensor from some getters (a native layer's weight), and has no is_same; an at::Tensor is one intrusive pointer to
    // its TensorImpl, so the first word behind the handle is the tensor's identity. A meta tensor has no data pointer
    // to compare instead.
    private static IntPtr Identity(Tensor tensor) => Marshal.ReadIntPtr(tensor.Handle);

    private void Add(Tensor tensor, (nn.Module Owner, string Name, string Path, bool IsParameter, Tensor Meta) slot)
    {
        var identity = Identity(tensor);
        if (!owners.TryGetValue(identity, out var slots))
            owners[identity] = slots = [];
        if (!slots.Any(existing => ReferenceEquals(existing.Owner, slot.Owner) && existing.Name == slot.Name))
            slots.Add(slot);
    }

    /// <summary>The meta tensors the load gives no value and that have a slot outside <paramref name="replacedModules"/>
    /// (module paths), as one problem line (none if there are none).</summary>
    public List<string> LeftEmpty(IReadOnlyList<string> replacedModules)
    {
        var filled = loaded.Values.ToHashSet();
        var empty = owners.Where(entry => !filled.Contains(entry.Key))
            .SelectMany(entry => entry.Value.Select(slot => slot.Path))
            .Where(path => !replacedModules.Any(module => path.StartsWith(module + ".", StringComparison.Ordinal)))
            .ToList();
        return empty.Count == 0 ? [] :
        [
            $"{string.Join(", ", empty)}: built without weights (EmptyWeights, on the meta device) and this load gives " +
            $"{(empty.Count == 1 ? "it" : "them")} no value; put {(empty.Count == 1 ? "it" : "them")} in the checkpoint, " +
            "or create it on the CPU (device: CPU) in the constructor",
        ];
    }

    /// <summary>Whether the load copies a value into <paramref name="tensor"/>'s storage through some key (a tied weight
    /// through another module's).</summary>
    public bool Fills(Tensor tensor) => tensor.is_meta && loaded.Values.Contains(Identity(tensor));

    /// <summary>The tensor to copy <paramref name="target"/>'s value into: the target itself, or for a meta tensor a new
    /// CPU tensor of its shape and dtype, made once (a tied weight's second key gets the same one). It takes the meta
    /// tensor's place in the model only at <see cref="Copied"/>, so a load that fails before that leaves it meta.</summary>
    public Tensor Destination(Tensor target)
    {
        if (!loaded.TryGetValue(target, out var identity))
            return target;
        if (replaced.TryGetValue(identity, out var done))
            return done;
        var memory = empty(target.shape, target.dtype, CPU).DetachFromDisposeScope();
        Tensor replacement = target is Parameter parameter ? new Parameter(memory, parameter.requires_grad) : memory;
        replaced[identity] = replacement;
        return replacement;
    }

    /// <summary>After <paramref name="target"/>'s value was copied into its <see cref="Destination"/>: puts that tensor
    /// in every slot that held the meta tensor (once).</summary>
    public void Copied(Tensor target)
    {
        if (!loaded.TryGetValue(target, out var identity) || !owners.Remove(identity, out var slots))
            return;
        var replacement = replaced[identity];
        foreach (var slot in slots)
            Install(slot.Owner, slot.Name, slot.Meta, replacement, slot.IsParameter);
    }

    // The layer's own setter when TorchSharp declares it (its native layers, e.g. Embedding, hand the tensor to libtorch
    // there) and the old wrapper is still alive (a managed layer's setter disposes the one it replaces, which a tied
    // second layer still holds); then, in every case, the registry entry in place (keeping the order) and every field
    // that held the meta tensor (a user module's own property is backed by one).
    private static void Install(nn.Module module, string name, Tensor old, Tensor replacement, bool isParameter)
    {
        var property = module.GetType().GetProperty(name, BindingFlags.Instance | BindingFlags.Public);
        if (property is { CanWrite: true } && property.DeclaringType?.Assembly == typeof(nn.Module).Assembly &&
            property.PropertyType.IsAssignableFrom(replacement.GetType()) && property.GetIndexParameters().Length == 0 &&
            !old.IsInvalid)
            property.SetValue(module, replacement);
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
    }
}
