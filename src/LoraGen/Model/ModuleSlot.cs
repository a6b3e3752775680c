using System.Reflection;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Where a layer sits in its parent, and how to put another module there so that forward calls it and the
/// parameter paths and order stay as they were. Three kinds: a target of a generated <see cref="ILoraModule"/>
/// (typed code, no reflection), an element of a <c>Sequential</c>, and a child registered by name on any other
/// module (TorchSharp's registry entry, replaced in place, and every field that holds the child).
/// </summary>
internal abstract class ModuleSlot
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    // TorchSharp 0.107 offers no public way to replace a child in place: register_module refuses a name in use, and
    // Sequential has no setter. These are the fields its own code reads (checked against its source; a test fails if
    // an upgrade renames them).
    private static readonly FieldInfo Registry = typeof(nn.Module).GetField("_internal_submodules", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp's Module._internal_submodules is gone; LoraGen's run-time targeting needs it.");
    private static readonly FieldInfo SequentialModules = typeof(Sequential).GetField("_modules", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp's Sequential._modules is gone; LoraGen's run-time targeting needs it.");

    protected ModuleSlot(string path) => Path = path;

    /// <summary>The child's path in the model, e.g. <c>layer1.0.conv1</c>.</summary>
    public string Path { get; }

    /// <summary>Puts <paramref name="module"/> where the child was.</summary>
    public abstract void Put(nn.Module<Tensor, Tensor> module);

    /// <summary>The slot of <paramref name="name"/> in <paramref name="parent"/>, which holds <paramref name="child"/>;
    /// checked that a <see cref="LoraLayer"/> can go there.</summary>
    /// <exception cref="LoraConfigurationException">A field holding the child is of a type the wrapper is not (a
    /// sealed layer class); the message names the field and what to do.</exception>
    public static ModuleSlot Of(nn.Module parent, string name, nn.Module child, string path)
    {
        if (parent is ILoraModule host && host.LoraTargets.Any(target => target.Field == name))
            return new GeneratedSlot(path, host, name);
        if (parent is Sequential sequential)
            return new SequentialSlot(path, sequential, child);
        return new RegisteredSlot(path, parent, name, FieldsHolding(parent, child, path), ContainerIndexer(parent, name, path));
    }

    // ModuleList<T> and ModuleDict<T> keep their own list, which forward reads; their indexer sets it. An element
    // type the wrapper is not (ModuleList<Linear>) cannot hold it.
    private static Action<nn.Module>? ContainerIndexer(nn.Module parent, string name, string path)
    {
        var type = parent.GetType();
        while (type is not null && !(type.IsGenericType && type.GetGenericTypeDefinition() is var definition
            && (definition == typeof(ModuleList<>) || definition == typeof(ModuleDict<>))))
            type = type.BaseType;
        if (type is null)
            return null;
        var element = type.GetGenericArguments()[0];
        if (!element.IsAssignableFrom(typeof(LoraLinear)))
            throw new LoraConfigurationException(path,
                $"is an element of a {type.Name[..^2]}<{element.Name}>, which cannot hold the LoRA wrapper (a Module<Tensor, Tensor>; " +
                $"TorchSharp's layer classes are sealed). Nothing was changed. Declare the container with the element type " +
                "Module<Tensor, Tensor>, or leave this layer out (exclude_modules, or a narrower target_modules).");
        bool list = type.GetGenericTypeDefinition() == typeof(ModuleList<>);
        var indexer = type.GetProperty("Item", [list ? typeof(int) : typeof(string)])!;
        object key = list ? int.Parse(name, System.Globalization.CultureInfo.InvariantCulture) : name;
        return module => indexer.SetValue(parent, module, [key]);
    }

    private static List<FieldInfo> FieldsHolding(nn.Module parent, nn.Module child, string path)
    {
        var fields = new List<FieldInfo>();
        for (var type = parent.GetType(); type is not null && type != typeof(nn.Module); type = type.BaseType)
        {
            foreach (var field in type.GetFields(InstanceFields))
            {
                if (field.FieldType.IsValueType || !ReferenceEquals(field.GetValue(parent), child))
                    continue;
                if (!field.FieldType.IsAssignableFrom(typeof(LoraLinear)))
                    throw new LoraConfigurationException(path,
                        $"is held by the field {type.Name}.{field.Name}, declared as {field.FieldType.Name}, which cannot hold the LoRA " +
                        $"wrapper (a LoraLayer is a Module<Tensor, Tensor>, and TorchSharp's layer classes are sealed). Nothing was " +
                        $"changed. If {type.Name} is your class, declare the field Module<Tensor, Tensor>; otherwise leave this layer " +
                        "out (exclude_modules, or a narrower target_modules).");
                fields.Add(field);
            }
        }
        return fields;
    }

    /// <summary>A target field of an annotated class: the generated setter.</summary>
    private sealed class GeneratedSlot(string path, ILoraModule host, string field) : ModuleSlot(path)
    {
        public override void Put(nn.Module<Tensor, Tensor> module) => host.SetLoraTarget(field, module);
    }

    /// <summary>An element of a Sequential: its forward and its naming read the private list, by index.</summary>
    private sealed class SequentialSlot(string path, Sequential parent, nn.Module child) : ModuleSlot(path)
    {
        private readonly int index = ((List<nn.IModule<Tensor, Tensor>>)SequentialModules.GetValue(parent)!).FindIndex(m => ReferenceEquals(m, child));

        public override void Put(nn.Module<Tensor, Tensor> module) =>
            ((List<nn.IModule<Tensor, Tensor>>)SequentialModules.GetValue(parent)!)[index] = module;
    }

    /// <summary>A child registered by name (fields, ModuleList, ModuleDict): the registry entry is replaced in place
    /// (same position), and so is every field, list element or dictionary entry that forward reads it from.</summary>
    private sealed class RegisteredSlot(string path, nn.Module parent, string name, List<FieldInfo> fields, Action<nn.Module>? setElement)
        : ModuleSlot(path)
    {
        public override void Put(nn.Module<Tensor, Tensor> module)
        {
            ((TorchSharp.Utils.OrderedDict<string, nn.Module>)Registry.GetValue(parent)!)[name] = module;
            foreach (var field in fields)
                field.SetValue(parent, module);
            setElement?.Invoke(module);
        }
    }
}
