using System.Reflection;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Files;

/// <summary>
/// One value a TorchSharp optimizer keeps: a param-group option (<c>lr</c>, <c>beta1</c>, <c>weight_decay</c>, …)
/// or a per-parameter state field (<c>step</c>, <c>exp_avg</c>, <c>momentum_buffer</c>, …). TorchSharp's managed
/// optimizers (every <see cref="OptimizerHelper"/>) declare them as public fields of their <c>Options</c> and
/// <c>State</c> classes, with PyTorch's names; this reads and writes them by those names, so one code path
/// serves AdamW, Adam, SGD and the others.
/// </summary>
internal sealed class OptimizerValue
{
    private static readonly Type[] Scalars = [typeof(double), typeof(float), typeof(long), typeof(int), typeof(bool)];

    private readonly Func<object, object?> get;
    private readonly Action<object, object?> set;

    private OptimizerValue(string name, Type type, Func<object, object?> get, Action<object, object?> set)
    {
        Name = name;
        Type = type;
        this.get = get;
        this.set = set;
    }

    /// <summary>The name in the file: PyTorch's (<c>lr</c>, <c>initial_lr</c>) or TorchSharp's field name.</summary>
    public string Name { get; }

    /// <summary>The declared type: <see cref="Tensor"/>, or a number or bool, possibly nullable.</summary>
    public Type Type { get; }

    /// <summary>Whether the value is a tensor (stored with the parameter's shape).</summary>
    public bool IsTensor => Type == typeof(Tensor);

    /// <summary>Whether the value may be null (a tensor not created yet, an option not set).</summary>
    public bool CanBeNull => IsTensor || Nullable.GetUnderlyingType(Type) is not null;

    /// <summary>The number or bool type behind a scalar value.</summary>
    public Type ScalarType => Nullable.GetUnderlyingType(Type) ?? Type;

    /// <summary>The value held by <paramref name="owner"/> (an options or state object).</summary>
    public object? Get(object owner) => get(owner);

    /// <summary>Replaces the value held by <paramref name="owner"/>.</summary>
    public void Set(object owner, object? value) => set(owner, value);

    /// <summary>The options of a param group: <c>lr</c> and <c>initial_lr</c> (the base class's properties), then
    /// every public field of <paramref name="optionsType"/> by name.</summary>
    /// <exception cref="NotSupportedException">A field has a type that cannot be stored.</exception>
    public static List<OptimizerValue> OptionsOf(Type optionsType)
    {
        var values = new List<OptimizerValue>
        {
            FromProperty("lr", typeof(OptimizerOptions).GetProperty(nameof(OptimizerOptions.LearningRate))!),
            FromProperty("initial_lr", typeof(OptimizerOptions).GetProperty(nameof(OptimizerOptions.InitialLearningRate))!),
        };
        values.AddRange(FieldsOf(optionsType));
        return values;
    }

    /// <summary>The public fields of a per-parameter state class, by name.</summary>
    /// <exception cref="NotSupportedException">A field has a type that cannot be stored.</exception>
    public static List<OptimizerValue> StateOf(Type stateType) => FieldsOf(stateType);

    /// <summary>The safetensors dtype a scalar value is stored as.</summary>
    public SafetensorsDType ScalarDType => ScalarType switch
    {
        var t when t == typeof(double) => SafetensorsDType.F64,
        var t when t == typeof(float) => SafetensorsDType.F32,
        var t when t == typeof(long) => SafetensorsDType.I64,
        var t when t == typeof(int) => SafetensorsDType.I32,
        _ => SafetensorsDType.BOOL,
    };

    /// <summary>A scalar's little-endian bytes.</summary>
    public static byte[] Encode(object value) => value switch
    {
        double d => BitConverter.GetBytes(d),
        float f => BitConverter.GetBytes(f),
        long l => BitConverter.GetBytes(l),
        int i => BitConverter.GetBytes(i),
        bool b => [b ? (byte)1 : (byte)0],
        _ => throw new NotSupportedException($"A {value.GetType().Name} cannot be stored as a scalar."),
    };

    /// <summary>The scalar in <paramref name="bytes"/> (already checked to be the dtype's size).</summary>
    public object Decode(byte[] bytes) => ScalarDType switch
    {
        SafetensorsDType.F64 => BitConverter.ToDouble(bytes),
        SafetensorsDType.F32 => BitConverter.ToSingle(bytes),
        SafetensorsDType.I64 => BitConverter.ToInt64(bytes),
        SafetensorsDType.I32 => BitConverter.ToInt32(bytes),
        _ => bytes[0] == 1,
    };

    /// <summary>What is wrong with a scalar's bytes, or null: a bool must be 0 or 1.</summary>
    public string? ScalarProblem(byte[] bytes) =>
        ScalarDType == SafetensorsDType.BOOL && bytes[0] > 1 ? $"a bool holds the byte {bytes[0]}, not 0 or 1" : null;

    private static List<OptimizerValue> FieldsOf(Type type)
    {
        var values = new List<OptimizerValue>();
        foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Instance).OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            Supported(type, field.Name, field.FieldType);
            values.Add(new OptimizerValue(field.Name, field.FieldType, field.GetValue, field.SetValue));
        }
        return values;
    }

    private static OptimizerValue FromProperty(string name, PropertyInfo property) =>
        new(name, property.PropertyType, property.GetValue, property.SetValue);

    private static void Supported(Type owner, string name, Type type)
    {
        var scalar = Nullable.GetUnderlyingType(type) ?? type;
        if (type != typeof(Tensor) && !Scalars.Contains(scalar))
            throw new NotSupportedException(
                $"{owner.FullName}.{name} is a {type.Name}, which a training state cannot store " +
                "(it stores tensors, double, float, long, int and bool fields, nullable or not).");
    }
}
