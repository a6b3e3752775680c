using System.Globalization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

// Merging adapters into the base weight and taking them out again, exactly.
public abstract partial class LoraLayer
{
    /// <summary>Merges the active adapters (see <see cref="Merge(IReadOnlyCollection{string})"/>).</summary>
    /// <returns>True if this call merged an adapter, false if they were all merged already.</returns>
    public bool Merge() => Merge(active);

    /// <summary>
    /// Adds the updates of <paramref name="adapters"/> into the base weight, computed in float32 from the weight as it
    /// was before any merge, so forward costs what the base layer alone costs for them. Adapters not merged keep
    /// being added by forward while active (merging a subset disables nothing). Refused, with nothing changed, when the
    /// merged weight would not be finite in the base's dtype. Already merged adapters change nothing.
    /// <para>Over a quantized base (<see cref="QuantizedBase"/>) the merged weight is re-quantized:
    /// W' = quantize(dequantize(original codes) + ΔW), which <b>rounds</b> (the update is mostly lost in the rounding
    /// for small updates; PEFT warns the same). The original codes are kept aside, so <see cref="Unmerge"/> restores
    /// them bit for bit. To merge without rounding, use <see cref="MergeAndUnload"/> (full precision).</para>
    /// </summary>
    /// <returns>True if this call merged an adapter.</returns>
    /// <exception cref="ArgumentException">An adapter name is unknown.</exception>
    public bool Merge(IReadOnlyCollection<string> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        foreach (var name in adapters)
            _ = ConfigOf(name);
        var adding = adapters.Distinct(StringComparer.Ordinal).Where(name => !merged.Contains(name)).ToList();
        if (adding.Count == 0)
            return false;
        var target = merged.Concat(adding).ToList();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var combined = CombinedChecked(adding, target);
        if (QuantizedBase is { } quantized)
        {
            codesBeforeMerge ??= quantized.Copy();
            quantized.Requantize(combined);
        }
        else
        {
            var weight = BaseWeight;
            // Detached from every dispose scope: it must outlive the caller's per-step scope.
            weightBeforeMerge ??= weight.detach().clone().DetachFromDisposeScope();
            weight.copy_(combined);
        }
        baseWeightVersion++;
        merged.AddRange(adding);
        return true;
    }

    // The original weight plus the target adapters' updates (float32 over a quantized base), refused when not finite.
    private Tensor CombinedChecked(List<string> adding, List<string> target)
    {
        var original = QuantizedBase is { } quantized ? (codesBeforeMerge ?? quantized).Dequantize() : weightBeforeMerge ?? BaseWeight;
        var combined = Combined(original, target);
        if (!combined.isfinite().all().item<bool>())
        {
            var largest = adding.Max(name => DeltaWeight(name).abs().max().item<float>());
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"Merging {Names(adding)} into {Shape} would make the weight non-finite in {original.dtype} " +
                $"(largest |update| is {largest:G4}); nothing was changed. The adapter has diverged: " +
                $"lower the learning rate or alpha, or keep it unmerged."));
        }
        return combined;
    }

    /// <summary>Takes <paramref name="adapters"/> (all merged ones when null) out of the base weight. With none left
    /// merged, the weight is exactly, bit for bit, what it was before the first merge; otherwise it is recomputed from
    /// that weight plus the remaining adapters. Unmerging what is not merged changes nothing and returns false.</summary>
    /// <returns>True if this call unmerged an adapter.</returns>
    public bool Unmerge(IReadOnlyCollection<string>? adapters = null)
    {
        var removing = adapters is null ? [.. merged] : adapters.Where(merged.Contains).Distinct(StringComparer.Ordinal).ToList();
        if (removing.Count == 0 || (weightBeforeMerge is null && codesBeforeMerge is null))
            return false;
        var remaining = merged.Except(removing).ToList();
        using (no_grad())
        {
            if (QuantizedBase is { } quantized)
            {
                // The original codes back exactly; with adapters left merged, re-quantized from the original again.
                if (remaining.Count == 0)
                    quantized.CopyCodesFrom(codesBeforeMerge!);
                else
                {
                    using var scope = NewDisposeScope();
                    using var original = codesBeforeMerge!.Dequantize();
                    quantized.Requantize(Combined(original, remaining));
                }
            }
            else if (remaining.Count == 0)
                BaseWeight.copy_(weightBeforeMerge!);
            else
            {
                using var scope = NewDisposeScope();
                BaseWeight.copy_(Combined(weightBeforeMerge!, remaining));
            }
            baseWeightVersion++;
        }
        merged.Clear();
        merged.AddRange(remaining);
        if (remaining.Count == 0)
            ForgetOriginal();
        return true;
    }

    // original + Σ deltas, summed in float32 (float64 over a float64 base) in the given order, in the base's dtype.
    // A DoRA adapter rescales what it is merged into, as PEFT's merge does: W ← m / ‖W + ΔW‖ · (W + ΔW), per output.
    private Tensor Combined(Tensor original, IEnumerable<string> adapters)
    {
        var sum = original.to(MergeType);
        foreach (var adapter in adapters)
        {
            if (configs[adapter].UseDora)
            {
                var norm = WeightNorm(adapter, sum);
                sum = FactorOverWeight(Magnitude(adapter).detach().to(MergeType) / norm) * (sum + DeltaWeight(adapter));
            }
            else
                sum = sum + DeltaWeight(adapter);
        }
        return sum.to(original.dtype);
    }

    private void ForgetOriginal()
    {
        weightBeforeMerge?.Dispose();
        weightBeforeMerge = null;
        codesBeforeMerge?.Dispose();
        codesBeforeMerge = null;
    }

    /// <summary>
    /// Merges the active adapters for good and gives back the plain base layer, whose parameters are named
    /// as before wrapping. This wrapper and its adapters must not be used afterwards.
    /// <para>Over a quantized base this merges to full precision: a new float32 <c>Linear</c> (parameters
    /// <c>weight</c>, <c>bias</c>) holding dequantize(original codes) + the merged and active adapters' updates, added
    /// exactly in float32; nothing is re-quantized. The quantized base is disposed.</para>
    /// </summary>
    /// <exception cref="InvalidOperationException">The merged weight would not be finite.</exception>
    public nn.Module<Tensor, Tensor> MergeAndUnload()
    {
        if (QuantizedBase is { } quantized)
            return MergeQuantizedToFloat(quantized);
        Merge();
        ForgetOriginal();
        merged.Clear();
        foreach (var adapter in order.ToList())
        {
            RemoveFactors(adapter);
            RemoveVariants(adapter);
        }
        return BaseLayer;
    }

    private Linear MergeQuantizedToFloat(QuantizedLinear quantized)
    {
        var target = merged.Concat(active.Where(name => !merged.Contains(name))).ToList();
        // Created outside the dispose scope: the layer's parameters must outlive it.
        var linear = nn.Linear(quantized.InFeatures, quantized.OutFeatures, hasBias: quantized.Bias is not null, device: quantized.Device);
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var weight = target.Count == 0 ? (codesBeforeMerge ?? quantized).Dequantize() : CombinedChecked(target, target);
            linear.weight!.copy_(weight);
            linear.bias?.copy_(quantized.Bias!);
            foreach (var parameter in linear.parameters())
                parameter.requires_grad = false;
        }
        catch
        {
            linear.Dispose();
            throw;
        }
        ForgetOriginal();
        merged.Clear();
        foreach (var adapter in order.ToList())
        {
            RemoveFactors(adapter);
            RemoveVariants(adapter);
        }
        quantized.Dispose();
        return linear;
    }
}
