using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Files;

/// <summary>
/// What a model and its optimizer hold that a training state saves, as slots with their keys:
/// <list type="bullet">
/// <item><c>model.&lt;path&gt;</c>: every trainable parameter (adapters, <c>Trainable</c> fields, and any other model
/// parameter the optimizer updates) and every persistent buffer (BatchNorm's running statistics change while
/// training), by its path in the model;</item>
/// <item><c>optimizer.param_groups.&lt;g&gt;.&lt;option&gt;</c>: each group's hyperparameters (<c>lr</c>,
/// <c>initial_lr</c>, <c>beta1</c>, …);</item>
/// <item><c>optimizer.state.&lt;path&gt;.&lt;field&gt;</c>: each parameter's optimizer state (<c>step</c>,
/// <c>exp_avg</c>, …);</item>
/// <item><c>rng.cpu</c>: the default CPU generator.</item>
/// </list>
/// Built the same way when saving and when loading, so the file's keys can be compared with the live ones.
/// </summary>
internal sealed class TrainingStateLayout
{
    /// <summary>The key of the CPU generator's state.</summary>
    public const string CpuRngKey = "rng.cpu";

    private TrainingStateLayout(string optimizerKind, List<List<string>> groups, List<(string Path, Parameter Parameter)> weights,
        List<TrainingStateSlot> slots)
    {
        OptimizerKind = optimizerKind;
        Groups = groups;
        Weights = weights;
        Slots = slots;
    }

    /// <summary>The optimizer's type, e.g. <c>TorchSharp.Modules.AdamW</c>.</summary>
    public string OptimizerKind { get; }

    /// <summary>Each param group's parameters, by path in the model, in the optimizer's order.</summary>
    public List<List<string>> Groups { get; }

    /// <summary>The parameters whose values are saved, in the model's order (buffers are saved too, but have no gradient).</summary>
    public List<(string Path, Parameter Parameter)> Weights { get; }

    /// <summary>Every slot: parameters, buffers, options, optimizer state, then the generator.</summary>
    public List<TrainingStateSlot> Slots { get; }

    /// <summary>The key of a parameter's or a buffer's value.</summary>
    public static string ModelKey(string path) => "model." + path;

    /// <summary>Reads the layout of <paramref name="model"/> trained by <paramref name="optimizer"/>; changes nothing.</summary>
    /// <exception cref="NotSupportedException">The optimizer is not one of TorchSharp's managed optimizers.</exception>
    /// <exception cref="ArgumentException">The optimizer updates a tensor that is not a parameter of the model, or one
    /// parameter twice.</exception>
    public static TrainingStateLayout Of(nn.Module model, optim.Optimizer optimizer)
    {
        if (optimizer is not OptimizerHelper helper)
            throw new NotSupportedException(
                $"A training state can hold the state of TorchSharp's managed optimizers (AdamW, Adam, SGD, RMSProp and the " +
                $"other subclasses of OptimizerHelper); {optimizer.GetType().Name} keeps its state in native code that " +
                "TorchSharp does not expose.");
        var paths = new Dictionary<IntPtr, string>();
        var modelOrder = new List<(string Path, Parameter Parameter)>();
        foreach (var (path, parameter) in model.named_parameters())
        {
            if (paths.TryAdd(parameter.Handle, path))
                modelOrder.Add((path, parameter));
        }

        var groups = new List<List<string>>();
        var optimized = new HashSet<IntPtr>();
        var stateDict = helper.state_dict();
        var slots = new List<TrainingStateSlot>();
        var stateSlots = new List<TrainingStateSlot>();
        int stateIndex = 0;
        var paramGroups = helper.ParamGroups.Cast<ParamGroup>().ToList();
        for (int g = 0; g < paramGroups.Count; g++)
        {
            var group = new List<string>();
            foreach (var parameter in paramGroups[g].Parameters)
            {
                if (!paths.TryGetValue(parameter.Handle, out var path))
                    throw new ArgumentException(
                        $"The optimizer's param group {g} holds a {parameter.dtype} tensor of shape [{string.Join(", ", parameter.shape)}] " +
                        "that is not a parameter of this model. Create the optimizer from this model's parameters, e.g. " +
                        "torch.optim.AdamW(model.LoraParameters()).", nameof(optimizer));
                if (!optimized.Add(parameter.Handle))
                    throw new ArgumentException(
                        $"The optimizer holds '{path}' twice; a parameter may be in one param group only.", nameof(optimizer));
                group.Add(path);
                stateSlots.AddRange(StateSlots(stateDict.State[stateIndex++], path, parameter));
            }
            groups.Add(group);
            foreach (var value in OptimizerValue.OptionsOf(stateDict.Options[g].GetType()))
                slots.Add(ScalarSlot($"optimizer.param_groups.{g}.{value.Name}", value, stateDict.Options[g]));
        }

        var unregistered = model.NamedLoraParameters().Where(p => !paths.ContainsKey(p.Parameter.Handle)).Select(p => p.Path).ToList();
        if (unregistered.Count > 0)
            throw new InvalidOperationException(
                $"{string.Join(", ", unregistered)}: not among the model's named_parameters(), so there is no path to save it under.");
        var trainable = model.NamedLoraParameters().Select(p => p.Parameter.Handle).ToHashSet();
        var weights = modelOrder.Where(p => trainable.Contains(p.Parameter.Handle) || optimized.Contains(p.Parameter.Handle)).ToList();
        slots.InsertRange(0, weights.Select(w => ValueSlot(w.Path, w.Parameter))
            .Concat(model.named_buffers(include_nonpersistent: false).Select(b => ValueSlot(b.name, b.buffer))));
        slots.AddRange(stateSlots);
        slots.Add(RngSlot());
        return new TrainingStateLayout(helper.GetType().FullName ?? helper.GetType().Name, groups, weights, slots);
    }

    // A parameter's or a buffer's value, copied in place.
    private static TrainingStateSlot ValueSlot(string path, Tensor target)
    {
        var dtype = TensorBytes.ToSafetensors(target.dtype, path);
        return new(ModelKey(path), dtype, target.shape, CanBeNone: false,
            Read: () => Bytes(target),
            Check: _ => null,
            Prepare: bytes =>
            {
                var value = Load(bytes!, dtype, target);
                return new TrainingStateSlot.Write(() =>
                {
                    using (no_grad())
                        target.copy_(value);
                }, value);
            });
    }

    private static IEnumerable<TrainingStateSlot> StateSlots(OptimizerState state, string path, Parameter parameter)
    {
        foreach (var value in OptimizerValue.StateOf(state.GetType()))
        {
            string key = $"optimizer.state.{path}.{value.Name}";
            if (!value.IsTensor)
            {
                yield return ScalarSlot(key, value, state);
                continue;
            }
            // A state tensor has the parameter's shape; its dtype is the live one's, or the parameter's while
            // it does not exist yet (SGD's momentum_buffer before the first step).
            var current = (Tensor?)value.Get(state);
            var dtype = TensorBytes.ToSafetensors(current?.dtype ?? parameter.dtype, key);
            yield return new TrainingStateSlot(key, dtype, parameter.shape, CanBeNone: true,
                Read: () => value.Get(state) is Tensor tensor ? Bytes(tensor) : null,
                Check: _ => null,
                Prepare: bytes =>
                {
                    if (bytes is null)
                        return new TrainingStateSlot.Write(() =>
                        {
                            var old = (Tensor?)value.Get(state);
                            value.Set(state, null);
                            old?.Dispose();
                        });
                    var loaded = Load(bytes, dtype, parameter);
                    return new TrainingStateSlot.Write(() =>
                    {
                        if (value.Get(state) is Tensor live)
                        {
                            using (no_grad())
                                live.copy_(loaded);
                        }
                        else
                        {
                            value.Set(state, loaded.clone().DetachFromDisposeScope());
                        }
                    }, loaded);
                });
        }
    }

    private static TrainingStateSlot ScalarSlot(string key, OptimizerValue value, object owner) => new(
        key, value.ScalarDType, [], value.CanBeNull,
        Read: () => value.Get(owner) is { } scalar ? OptimizerValue.Encode(scalar) : null,
        Check: value.ScalarProblem,
        Prepare: bytes =>
        {
            object? decoded = bytes is null ? null : value.Decode(bytes);
            return new TrainingStateSlot.Write(() => value.Set(owner, decoded));
        });

    private static TrainingStateSlot RngSlot() => new(
        CpuRngKey, SafetensorsDType.U8, [CpuGeneratorState.KnownLength], CanBeNone: false,
        Read: CpuGeneratorState.Capture,
        Check: CpuGeneratorState.Problem,
        Prepare: bytes => new TrainingStateSlot.Write(() => CpuGeneratorState.Restore(bytes!)));

    private static byte[] Bytes(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        return tensor.detach().cpu().contiguous().bytes.ToArray();
    }

    // A new tensor on the parameter's device, detached from any dispose scope of the caller's (the slot disposes it).
    private static Tensor Load(byte[] bytes, SafetensorsDType dtype, Tensor like)
    {
        var cpu = TensorBytes.FromBytes(bytes, dtype, like.shape).DetachFromDisposeScope();
        if (like.device_type == DeviceType.CPU)
            return cpu;
        using (cpu)
            return cpu.to(like.device).DetachFromDisposeScope();
    }
}
