using LoraGen.Files;
using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// A frozen base layer plus a low-rank update: <c>y = base(x) + scaling · B(A(dropout(x)))</c>.
/// Parameters keep PEFT's names (<c>base_layer.weight</c>, <c>lora_A.weight</c>, <c>lora_B.weight</c>),
/// so paths map one to one onto PEFT's adapter keys.
/// </summary>
public abstract partial class LoraLayer : nn.Module<Tensor, Tensor>
{
    // The base weight as it was before Merge, kept aside so Unmerge restores it bit for bit
    // (subtracting the delta again would drift, by 1.5e-2 after 1000 cycles in bf16).
    private Tensor? weightBeforeMerge;
    private bool adapterEnabled = true;

    /// <summary>Checks the options, then wraps <paramref name="baseLayer"/> and freezes its parameters.</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, or the adapter would not save parameters.</exception>
    protected LoraLayer(string name, nn.Module<Tensor, Tensor> baseLayer, LoraConfig config, LoraLayerShape shape, LoraOptions options)
        : base(name)
    {
        // Checked before anything is touched, so a refused layer is left exactly as it was.
        LoraTargetValidator.Validate(shape.ToString(), shape, config, options);
        BaseLayer = baseLayer;
        Config = config;
        Shape = shape;
        Scaling = config.Scaling;
        register_module(PeftLayout.BaseLayer, baseLayer);
        foreach (var parameter in baseLayer.parameters())
            parameter.requires_grad = false;
    }

    /// <summary>The wrapped layer, registered as <c>base_layer</c>.</summary>
    public nn.Module<Tensor, Tensor> BaseLayer { get; }

    /// <summary>The adapter's hyperparameters.</summary>
    public LoraConfig Config { get; }

    /// <summary>The base layer's sizes.</summary>
    public LoraLayerShape Shape { get; }

    /// <summary>The rank r.</summary>
    public int Rank => Config.Rank;

    /// <summary>The factor the adapter's output is multiplied by (alpha / r, or alpha / √r).</summary>
    public double Scaling { get; }

    /// <summary>Whether the adapter's update is currently added into the base weight.</summary>
    public bool IsMerged => weightBeforeMerge is not null;

    /// <summary>
    /// Whether forward adds the adapter's output. A disabled layer computes the base layer alone.
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
                    $"Cannot disable the adapter of {Shape} while it is merged into the base weight: call Unmerge() first.");
            adapterEnabled = value;
        }
    }

    /// <summary>The adapter's parameters with their names inside this layer (e.g. <c>lora_A.weight</c>).</summary>
    public abstract IEnumerable<(string Name, Parameter Parameter)> NamedAdapterParameters { get; }

    /// <summary>The base layer's weight, which Merge and Unmerge update in place.</summary>
    protected abstract Parameter BaseWeight { get; }

    /// <summary>
    /// <paramref name="baseOutput"/> + scaling · B(A(dropout(x))) as a new tensor: in the base's dtype when the
    /// adapter has it, else in the promoted dtype (float32 over a half-precision base), which forward rounds back.
    /// </summary>
    protected abstract Tensor AddAdapterOutput(Tensor baseOutput, Tensor x);

    /// <summary>scaling · (B·A) arranged like the base weight, in <see cref="MergeType"/>.</summary>
    protected abstract Tensor DeltaWeight();

    /// <summary>The dtype merges are computed in: float32, or float64 over a float64 base.</summary>
    protected ScalarType MergeType => BaseWeight.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (IsMerged && training && is_grad_enabled() && NamedAdapterParameters.Any(p => p.Parameter.requires_grad))
            throw new InvalidOperationException(
                $"The adapter of {Shape} is merged into the base weight, so a training step cannot reach it: the " +
                "merged forward uses the frozen base weight only, and backward would find nothing to train. Call " +
                "Unmerge() before training (merge again for inference), or call eval() / use torch.no_grad() if this " +
                "forward is not for training.");
        var result = BaseLayer.call(x);
        if (IsMerged || !adapterEnabled)
            return result;

        using (result)
        {
            var sum = AddAdapterOutput(result, x);
            if (sum.dtype == result.dtype)
                return sum;
            // A bf16/fp16 base with float32 adapters: the sum was formed in float32; round it back once.
            using (sum)
                return sum.to(result.dtype);
        }
    }

    /// <summary>
    /// <paramref name="baseOutput"/> + scaling · down·upᵀ for <paramref name="down"/> [..., r] and
    /// <paramref name="up"/> [out, r]. When the dtypes agree this is one <c>addmm</c>: the product, the scaling
    /// and the sum in a single kernel and a single autograd node, where a product, a multiply and an add would
    /// each read and write the whole output and record a node of their own.
    /// </summary>
    protected Tensor AddLowRankProduct(Tensor baseOutput, Tensor down, Tensor up)
    {
        if (baseOutput.dtype != down.dtype)
        {
            // Half-precision base: add in the adapter's float32 (type promotion), forward rounds back.
            using var upT32 = up.t();
            using var product = down.matmul(upT32);
            using var shaped = product.view(baseOutput.shape);
            return baseOutput.add(shaped, alpha: Scaling);
        }
        long outFeatures = up.shape[0], rank = up.shape[1];
        using var baseRows = baseOutput.reshape(-1, outFeatures);
        using var downRows = down.reshape(-1, rank);
        using var upT = up.t();
        using var sum = addmm(baseRows, downRows, upT, beta: 1, alpha: (float)Scaling);
        return sum.view(baseOutput.shape);
    }

    /// <summary>
    /// Adds the update into the base weight, computed in float32, so forward costs what the base
    /// layer alone costs. Refused, with nothing changed, when the merged weight would not be finite
    /// in the base's dtype. Merging a merged layer changes nothing and returns false.
    /// </summary>
    /// <returns>True if this call merged the adapter, false if it was already merged.</returns>
    public bool Merge()
    {
        if (IsMerged)
            return false;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var weight = BaseWeight;
        var merged = (weight.to(MergeType) + DeltaWeight()).to(weight.dtype);
        if (!merged.isfinite().all().item<bool>())
        {
            var largest = DeltaWeight().abs().max().item<float>();
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"Merging the adapter into {Shape} would make the weight non-finite in {weight.dtype} " +
                $"(largest |update| is {largest:G4}); nothing was changed. The adapter has diverged: " +
                $"lower the learning rate or alpha, or keep it unmerged."));
        }
        // Detached from every dispose scope: it must outlive the caller's per-step scope.
        weightBeforeMerge = weight.detach().clone().DetachFromDisposeScope();
        weight.copy_(merged);
        return true;
    }

    /// <summary>Restores the base weight exactly as it was before <see cref="Merge"/>.
    /// Unmerging an unmerged layer changes nothing and returns false (PEFT warns "Already unmerged").</summary>
    /// <returns>True if this call unmerged the adapter, false if it was not merged.</returns>
    public bool Unmerge()
    {
        if (weightBeforeMerge is null)
            return false;
        using (no_grad())
            BaseWeight.copy_(weightBeforeMerge);
        weightBeforeMerge.Dispose();
        weightBeforeMerge = null;
        return true;
    }

    /// <summary>
    /// Merges the update for good and gives back the plain base layer, whose parameters are named
    /// as before wrapping. This wrapper and its adapters must not be used afterwards.
    /// </summary>
    public nn.Module<Tensor, Tensor> MergeAndUnload()
    {
        Merge();
        weightBeforeMerge?.Dispose();
        weightBeforeMerge = null;
        foreach (var (_, parameter) in NamedAdapterParameters)
            parameter.Dispose();
        return BaseLayer;
    }

    /// <summary>Whether forward applies dropout to the adapter's input: in training mode, when p > 0.
    /// At p = 0 nothing is called at all, not even an identity.</summary>
    protected bool AppliesDropout => Config.Dropout > 0 && training;

    /// <summary>The dtype adapters get over a base of <paramref name="baseType"/>: the requested one
    /// (float32 by default), except that a float64 base keeps float64 adapters.</summary>
    protected static ScalarType AdapterTypeFor(ScalarType baseType, LoraOptions options) =>
        baseType == ScalarType.Float64 ? ScalarType.Float64 : options.AdapterDType;

    /// <summary>Initialises a down-projection A as PEFT does: Kaiming-uniform (a = √5), or N(0, (1/r)²).</summary>
    protected void InitializeDownProjection(Tensor a)
    {
        using var noGrad = no_grad();
        if (Config.Init == LoraInit.Gaussian)
            nn.init.normal_(a, mean: 0, std: 1.0 / Rank);
        else
            nn.init.kaiming_uniform_(a, a: Math.Sqrt(5));
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            weightBeforeMerge?.Dispose();
            weightBeforeMerge = null;
        }
        base.Dispose(disposing);
    }
}
