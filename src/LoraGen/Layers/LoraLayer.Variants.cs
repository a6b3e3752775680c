using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

// What DoRA and the base-rewriting initialisations (PiSSA, OLoRA) add to a layer.
public abstract partial class LoraLayer
{
    /// <summary>
    /// ‖W + scaling·B·A‖ for adapter <paramref name="adapter"/> with <paramref name="weight"/> as W (laid out like the
    /// base weight, in the dtype the norm is computed in), taken per output as PEFT's <c>get_weight_norm</c> does and
    /// shaped like the magnitude vector. A and B are read detached.
    /// </summary>
    private protected abstract Tensor WeightNorm(string adapter, Tensor weight);

    /// <summary>A per-output factor shaped like the magnitude, arranged to multiply a weight laid out like the base
    /// weight (PEFT's dora_factor view): [out, 1] for Linear, [out, 1, 1…] for convolutions, [1, dim] for Embedding.</summary>
    private protected abstract Tensor FactorOverWeight(Tensor factor);

    /// <summary>PiSSA/OLoRA for a Linear: sets A and B from <paramref name="weight"/> (float32, [out, in]) and returns the
    /// residual W − scaling·B·A (float32). Only Linear layers support it (the validator refuses the others).</summary>
    private protected virtual Tensor InitializeFromWeight(string adapter, LoraConfig config, Tensor weight) =>
        throw new LoraConfigurationException(Shape.ToString(), $"Init = LoraInit.{config.Init} is for Linear layers only.");

    // After A and B exist: PiSSA/OLoRA rewrite the base weight, then DoRA measures the (possibly rewritten) weight,
    // in PEFT's order (update_layer: the init, then the variant).
    private void InitializeVariants(string adapter, LoraConfig config)
    {
        if (config.RewritesBase)
        {
            if (IsMerged)
                throw new InvalidOperationException(
                    $"Cannot add a {config.Init} adapter to {Shape} while {Names(merged)} {(merged.Count == 1 ? "is" : "are")} merged: it rewrites the base weight. Call Unmerge() first.");
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var weight = BaseWeight;
            var residual = InitializeFromWeight(adapter, config, weight.to(ScalarType.Float32));
            weight.copy_(residual.to(weight.dtype));
            baseWeightVersion++;
            var (a, b) = Factors(adapter);
            initialFactors[adapter] = (a.detach().clone().DetachFromDisposeScope(), b.detach().clone().DetachFromDisposeScope());
        }
        if (config.UseDora)
        {
            if (magnitudes is null)
            {
                magnitudes = new AdapterContainer(PeftLayout.MagnitudeVector);
                register_module(PeftLayout.MagnitudeVector, magnitudes);
            }
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var adapterType = Factors(adapter).A.dtype;
            var norm = WeightNorm(adapter, BaseWeight.to(adapterType));
            magnitudes.AddModule(adapter, new MagnitudeVector(new Parameter(norm.detach().clone().DetachFromDisposeScope())));
        }
    }

    // What an adapter holds beyond A and B.
    private void RemoveVariants(string adapter)
    {
        magnitudes?.Remove(adapter);
        if (initialFactors.Remove(adapter, out var factors))
        {
            factors.A.Dispose();
            factors.B.Dispose();
        }
    }
}
