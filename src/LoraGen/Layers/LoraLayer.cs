using System.Globalization;
using LoraGen.Files;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// A frozen base layer plus named low-rank updates, as PEFT's LoRA layers:
/// <c>y = base(x) + Σ over active adapters of scaling · B(A(dropout(x)))</c>. The first adapter is created with the
/// layer (named <see cref="DefaultAdapter"/> unless told otherwise); more can be added, activated, merged and deleted
/// by name. Parameters keep PEFT's names: <c>base_layer.weight</c>, <c>lora_A.default.weight</c>,
/// <c>lora_B.default.weight</c> (in files the adapter name is left out: <c>lora_A.weight</c>).
/// </summary>
public abstract partial class LoraLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>The adapter a layer is created with, as in PEFT.</summary>
    public const string DefaultAdapter = "default";

    /// <summary>In a per-sample adapter list (<see cref="LoraModelExtensions.AdapterPerSample"/>): no adapter, the base alone.</summary>
    public const string BaseOnly = "__base__";

    private readonly Dictionary<string, LoraConfig> configs = new(StringComparer.Ordinal);
    private readonly List<string> order = [];
    private readonly List<string> active = [];
    private readonly List<string> merged = [];
    // The base weight as it was before the first merge, kept aside so Unmerge restores it bit for bit (subtracting
    // the deltas again would drift, by 1.5e-2 after 1000 cycles in bf16); with several adapters merged, the weight is
    // always this plus their deltas, recomputed.
    private Tensor? weightBeforeMerge;
    // Bumped whenever the base weight is written (merges, a PiSSA/OLoRA residual, a checkpoint load), so caches of
    // values derived from the frozen weight (DoRA's row norms) know to recompute.
    private int baseWeightVersion;
    // Over a quantized base: the original codes, kept aside (they are small) while a merge has re-quantized them.
    private QuantizedLinear? codesBeforeMerge;
    private bool adapterEnabled = true;
    private readonly LoraOptions options;
    // DoRA's magnitude vectors (PEFT's lora_magnitude_vector ModuleDict), registered with the first DoRA adapter so
    // a plain LoRA layer's modules are PEFT's.
    private AdapterContainer? magnitudes;
    // PiSSA/OLoRA: each such adapter's A₀ and B₀ as initialised, for saving it as a plain LoRA on the original base.
    private readonly Dictionary<string, (Tensor A, Tensor B)> initialFactors = new(StringComparer.Ordinal);

    /// <summary>Checks the options, then wraps <paramref name="baseLayer"/> and freezes its parameters; the subclass
    /// then creates the first adapter with <see cref="CreateFirstAdapter"/>.</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, or the adapter would not save parameters.</exception>
    protected LoraLayer(string name, nn.Module<Tensor, Tensor> baseLayer, LoraConfig config, LoraLayerShape shape, LoraOptions options)
        : base(name)
    {
        // Checked before anything is touched, so a refused layer is left exactly as it was.
        LoraTargetValidator.Validate(shape.ToString(), shape, config, options);
        if (baseLayer is QuantizedLinear)
            LoraTargetValidator.ValidateOverQuantized(shape.ToString(), config);
        BaseLayer = baseLayer;
        Shape = shape;
        this.options = options;
        register_module(PeftLayout.BaseLayer, baseLayer);
        foreach (var parameter in baseLayer.parameters())
            parameter.requires_grad = false;
    }

    /// <summary>The wrapped layer, registered as <c>base_layer</c>.</summary>
    public nn.Module<Tensor, Tensor> BaseLayer { get; }

    /// <summary>The base layer's sizes.</summary>
    public LoraLayerShape Shape { get; }

    /// <summary>The base layer when it is a <see cref="QuantizedLinear"/> (QLoRA), else null.</summary>
    public QuantizedLinear? QuantizedBase => BaseLayer as QuantizedLinear;

    // Where the base weight lives and how it is laid out: a quantized base has no weight parameter, only codes that
    // stand for a float32 [out, in] weight.
    private Device BaseDevice => QuantizedBase?.Device ?? BaseWeight.device;

    /// <summary>The base weight's dtype: float32 for a quantized base (what it dequantizes to).</summary>
    private protected ScalarType BaseWeightType => QuantizedBase is null ? BaseWeight.dtype : ScalarType.Float32;

    /// <summary>The base weight's shape ([out, in] for a quantized base).</summary>
    private protected long[] BaseWeightShape => QuantizedBase is { } q ? [q.OutFeatures, q.InFeatures] : BaseWeight.shape;

    /// <summary>Every adapter this layer holds, in the order they were added.</summary>
    public IReadOnlyList<string> AdapterNames => order;

    /// <summary>The adapters forward adds (and training trains), in order.</summary>
    public IReadOnlyList<string> ActiveAdapters => active;

    /// <summary>The adapters whose updates are added into the base weight.</summary>
    public IReadOnlyList<string> MergedAdapters => merged;

    /// <summary>The hyperparameters of the first active adapter (of the first adapter when none is active).</summary>
    public LoraConfig Config => configs[Representative];

    /// <summary>The rank r of the first active adapter.</summary>
    public int Rank => Config.Rank;

    /// <summary>The factor the first active adapter's output is multiplied by (alpha / r, or alpha / √r).</summary>
    public double Scaling => Config.Scaling;

    /// <summary>Whether any adapter's update is currently added into the base weight.</summary>
    public bool IsMerged => merged.Count > 0;

    /// <summary>The hyperparameters of adapter <paramref name="adapter"/>.</summary>
    /// <exception cref="ArgumentException">The layer has no such adapter.</exception>
    public LoraConfig ConfigOf(string adapter) => configs.TryGetValue(adapter, out var config) ? config : throw NoSuchAdapter(adapter);

    /// <summary>
    /// Whether forward adds the active adapters' output. A disabled layer computes the base layer alone.
    /// Disabling a merged layer is refused: unmerge it first (the model-wide
    /// <see cref="LoraModelExtensions.DisableAdapters"/> does that for you).
    /// </summary>
    public bool AdapterEnabled
    {
        get => adapterEnabled;
        set
        {
            if (!value && IsMerged)
                throw new InvalidOperationException(
                    $"Cannot disable the adapters of {Shape} while {Names(merged)} {(merged.Count == 1 ? "is" : "are")} merged into the base weight: call Unmerge() first.");
            adapterEnabled = value;
        }
    }

    /// <summary>The active adapters' parameters with their names inside this layer, as PEFT names them in memory
    /// (e.g. <c>lora_A.default.weight</c>).</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedAdapterParameters =>
        active.SelectMany(adapter => NamedParametersOf(adapter));

    /// <summary>Adapter <paramref name="adapter"/>'s parameters with their in-memory names (<c>lora_A.name.weight</c>).</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParametersOf(string adapter)
    {
        _ = ConfigOf(adapter);
        return AdapterParametersOf(adapter).Select(entry => (InMemoryName(entry.Name, adapter), entry.Parameter)).ToList();
    }

    /// <summary>Adapter <paramref name="adapter"/>'s parameters with the names PEFT writes in files (<c>lora_A.weight</c>,
    /// <c>lora_embedding_A</c>): A first, then B.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> AdapterParametersOf(string adapter)
    {
        _ = ConfigOf(adapter);
        var (a, b) = Factors(adapter);
        return configs[adapter].UseDora
            ? [(FactorNames.A, a), (FactorNames.B, b), (PeftLayout.MagnitudeVector, Magnitude(adapter))]
            : [(FactorNames.A, a), (FactorNames.B, b)];
    }

    /// <summary>DoRA adapter <paramref name="adapter"/>'s magnitude vector <c>m</c> (PEFT's
    /// <c>lora_magnitude_vector.&lt;adapter&gt;.weight</c>): [out] for Linear, [dim] for Embedding, [1, out, 1…] for
    /// convolutions.</summary>
    /// <exception cref="ArgumentException">The layer has no such adapter, or it is not a DoRA adapter.</exception>
    public Parameter Magnitude(string adapter) =>
        ConfigOf(adapter).UseDora && magnitudes is not null
            ? magnitudes.SubmoduleWeight(adapter)
            : throw new ArgumentException($"Adapter '{adapter}' of {Shape} is not a DoRA adapter (UseDora is false).", nameof(adapter));

    /// <summary>A PiSSA/OLoRA adapter's A₀ and B₀ as initialised (null for other adapters): saving writes
    /// [A; A₀] and [B, −B₀], a plain LoRA on the original base.</summary>
    internal (Tensor A, Tensor B)? InitialFactorsOf(string adapter) =>
        initialFactors.TryGetValue(adapter, out var factors) ? factors : null;

    /// <summary>Per-sample adapters for the next forwards (<see cref="LoraModelExtensions.AdapterPerSample"/>), or null.</summary>
    internal IReadOnlyList<string>? PerSampleAdapters { get; set; }

    /// <summary>The file names of A and B for this kind of layer.</summary>
    private protected abstract (string A, string B) FactorNames { get; }

    /// <summary>The base layer's weight, which Merge and Unmerge update in place.</summary>
    protected abstract Parameter BaseWeight { get; }

    /// <summary>Creates adapter <paramref name="adapter"/>'s A and B (PEFT's initialisation) on <paramref name="device"/>.</summary>
    private protected abstract void CreateFactors(string adapter, LoraConfig config, Device device, ScalarType dtype);

    /// <summary>Removes and disposes adapter <paramref name="adapter"/>'s A and B.</summary>
    private protected abstract void RemoveFactors(string adapter);

    /// <summary>Adapter <paramref name="adapter"/>'s A and B, read through the registry (Module.to() replaces them).</summary>
    private protected abstract (Parameter A, Parameter B) Factors(string adapter);

    /// <summary>
    /// <paramref name="baseOutput"/> + scaling · B(A(dropout(x))) for one adapter, as a new tensor: in the base's dtype
    /// when the adapter has it, else in the promoted dtype (float32 over a half-precision base), which forward rounds back.
    /// </summary>
    private protected abstract Tensor AddAdapterOutput(string adapter, Tensor baseOutput, Tensor x);

    /// <summary>The base output plus <paramref name="adapter"/>'s (the only one active, unmerged, not DoRA) computed
    /// as one operation, or null where this layer has no such path for this call (then forward adds the adapter to
    /// the base output as usual).</summary>
    private protected virtual Tensor? FusedForward(string adapter, Tensor x) => null;

    /// <summary>scaling · (B·A) of one adapter arranged like the base weight, in <see cref="MergeType"/>.</summary>
    private protected abstract Tensor DeltaWeight(string adapter);

    /// <summary><paramref name="baseOutput"/> plus DoRA adapter <paramref name="adapter"/>'s contribution, as PEFT's
    /// <c>dora.py</c> computes it (the weight norm detached).</summary>
    private protected abstract Tensor AddDoraOutput(string adapter, Tensor baseOutput, Tensor x);

    /// <summary>Tells the layer its base weight was written from outside (a checkpoint load), so values derived from it
    /// are recomputed.</summary>
    internal void BaseWeightChanged() => baseWeightVersion++;

    /// <summary>Changes whenever the base weight is written (see the field).</summary>
    private protected int BaseWeightVersion => baseWeightVersion;

    /// <summary>The dtype merges are computed in: float32, or float64 over a float64 base.</summary>
    protected ScalarType MergeType => BaseWeightType == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    private string Representative => active.Count > 0 ? active[0] : order[0];

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (training && is_grad_enabled() && merged.Any(name => NamedParametersOf(name).Any(p => p.Parameter.requires_grad)))
            throw new InvalidOperationException(
                $"Adapter {Names(merged)} of {Shape} is merged into the base weight, so a training step cannot reach it: the " +
                "merged forward uses the frozen base weight only, and backward would find nothing to train. Call " +
                "Unmerge() before training (merge again for inference), or call eval() / use torch.no_grad() if this " +
                "forward is not for training.");
        if (adapterEnabled && PerSampleAdapters is null && active.Count == 1 && merged.Count == 0
            && !configs[active[0]].UseDora && FusedForward(active[0], x) is { } fused)
            return fused;
        var result = BaseLayer.call(x);
        if (!adapterEnabled)
            return result;
        if (PerSampleAdapters is { } perSample)
            return MixedBatch(result, x, perSample);

        var baseType = result.dtype;
        foreach (var adapter in active)
        {
            if (merged.Contains(adapter))
                continue;
            var sum = configs[adapter].UseDora ? AddDoraOutput(adapter, result, x) : AddAdapterOutput(adapter, result, x);
            result.Dispose();
            result = sum;
        }
        if (result.dtype == baseType)
            return result;
        // A bf16/fp16 base with float32 adapters: the sum was formed in float32; round it back once.
        using (result)
            return result.to(baseType);
    }

    // PEFT's adapter_names=[...]: sample i of the batch gets adapter perSample[i] (or none). Each adapter runs on its
    // own samples only, with the same code as a whole batch of them would.
    private Tensor MixedBatch(Tensor result, Tensor x, IReadOnlyList<string> perSample)
    {
        if (training)
            throw new InvalidOperationException(
                "Per-sample adapters are for inference: call eval() first (PEFT refuses adapter_names in training too).");
        if (IsMerged)
            throw new InvalidOperationException(
                $"Per-sample adapters need every adapter unmerged, but {Names(merged)} {(merged.Count == 1 ? "is" : "are")} merged into {Shape}: call Unmerge() first.");
        if (x.dim() == 0 || x.shape[0] != perSample.Count)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"Per-sample adapters name {perSample.Count} samples, but {Shape} got a batch of {(x.dim() == 0 ? 0 : x.shape[0])} (the first axis of its input)."));
        var dora = perSample.Distinct(StringComparer.Ordinal).Where(name => name != BaseOnly && ConfigOf(name).UseDora).ToList();
        if (dora.Count > 0)
            throw new InvalidOperationException(
                $"Per-sample adapters cannot include DoRA adapters ({Names(dora)} on {Shape}): DoRA rescales the whole weight " +
                "per output, which PEFT does not mix within a batch either (\"Cannot pass `adapter_names` when DoRA is enabled\"). " +
                "Run those samples in a batch of their own with SetActiveAdapters.");
        var baseType = result.dtype;
        foreach (var adapter in perSample.Distinct(StringComparer.Ordinal))
        {
            if (adapter == BaseOnly)
                continue;
            _ = ConfigOf(adapter);
            var rows = perSample.Select((name, i) => (name, i)).Where(entry => entry.name == adapter).Select(entry => (long)entry.i).ToArray();
            using var index = tensor(rows, device: x.device);
            using var input = x.index_select(0, index);
            using var baseRows = result.index_select(0, index);
            using var sum = AddAdapterOutput(adapter, baseRows, input);
            using var rounded = sum.dtype == baseType ? null : sum.to(baseType);
            var filled = result.index_copy(0, index, rounded ?? sum);
            result.Dispose();
            result = filled;
        }
        return result;
    }

    /// <summary>
    /// <paramref name="baseOutput"/> + scaling · down·upᵀ for <paramref name="down"/> [..., r] and
    /// <paramref name="up"/> [out, r]. When the dtypes agree this is one <c>addmm</c>: the product, the scaling
    /// and the sum in a single kernel and a single autograd node, where a product, a multiply and an add would
    /// each read and write the whole output and record a node of their own.
    /// </summary>
    private protected static Tensor AddLowRankProduct(Tensor baseOutput, Tensor down, Tensor up, double scaling)
    {
        if (baseOutput.dtype != down.dtype)
        {
            // Half-precision base: add in the adapter's float32 (type promotion), forward rounds back.
            using var upT32 = up.t();
            using var product = down.matmul(upT32);
            using var shaped = product.view(baseOutput.shape);
            return baseOutput.add(shaped, alpha: scaling);
        }
        long outFeatures = up.shape[0], rank = up.shape[1];
        using var baseRows = baseOutput.reshape(-1, outFeatures);
        using var downRows = down.reshape(-1, rank);
        using var upT = up.t();
        using var sum = addmm(baseRows, downRows, upT, beta: 1, alpha: (float)scaling);
        return sum.view(baseOutput.shape);
    }

    /// <summary><paramref name="weight"/> + scaling · <paramref name="left"/>·<paramref name="right"/>: one addmm, except in
    /// float64, where addmm's float alpha would round the scaling.</summary>
    private protected static Tensor AddScaledProduct(Tensor weight, Tensor left, Tensor right, double scaling)
    {
        if (weight.dtype != ScalarType.Float64)
            return addmm(weight, left, right, beta: 1, alpha: (float)scaling);
        using var product = left.matmul(right);
        return weight.add(product, alpha: scaling);
    }

    /// <summary>Whether forward applies dropout to adapter <paramref name="adapter"/>'s input: in training mode, when
    /// p > 0. At p = 0 nothing is called at all, not even an identity.</summary>
    private protected bool AppliesDropout(string adapter) => configs[adapter].Dropout > 0 && training;

    /// <summary>Adapter <paramref name="adapter"/>'s scaling.</summary>
    private protected double ScalingOf(string adapter) => configs[adapter].Scaling;

    /// <summary>The dtype adapters get over a base of <paramref name="baseType"/>: the requested one
    /// (float32 by default), except that a float64 base keeps float64 adapters.</summary>
    protected static ScalarType AdapterTypeFor(ScalarType baseType, LoraOptions options) =>
        baseType == ScalarType.Float64 ? ScalarType.Float64 : options.AdapterDType;

    /// <summary>Initialises a down-projection A as PEFT does: Kaiming-uniform (a = √5), or N(0, (1/r)²).</summary>
    private protected static void InitializeDownProjection(Tensor a, LoraConfig config)
    {
        using var noGrad = no_grad();
        if (config.Init == LoraInit.Gaussian)
            nn.init.normal_(a, mean: 0, std: 1.0 / config.Rank);
        else
            nn.init.kaiming_uniform_(a, a: Math.Sqrt(5));
    }

    private static string Names(IEnumerable<string> names) => string.Join(", ", names.Select(name => $"'{name}'"));

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ForgetOriginal();
            foreach (var (a, b) in initialFactors.Values)
            {
                a.Dispose();
                b.Dispose();
            }
            initialFactors.Clear();
        }
        base.Dispose(disposing);
    }
}
