using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>How <see cref="NamedAdapterExtensions.AddWeightedAdapter"/> combines adapters (PEFT's <c>combination_type</c>).</summary>
public enum AdapterCombination
{
    /// <summary>Weighted sums of the A's and of the B's (equal ranks).</summary>
    Linear,

    /// <summary>The A's and B's stacked: rank Σ rᵢ, update exactly Σ wᵢsᵢBᵢAᵢ.</summary>
    Cat,

    /// <summary>The best rank-r approximation of the weighted sum of the updates.</summary>
    Svd,
}

/// <summary>PEFT's <c>add_weighted_adapter</c> for linear, cat and svd (tuners/lora/model.py), layer by layer.</summary>
internal static class AdapterCombiner
{
    public static void Add(nn.Module model, IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string adapter,
        AdapterCombination combination, int? svdRank)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(adapter);
        var known = LoraModelExtensions.AllAdapterNames(model);
        if (adapters.Count == 0 || adapters.Count != weights.Count)
            throw new ArgumentException($"Give one weight per adapter: {adapters.Count} adapters, {weights.Count} weights.", nameof(weights));
        var unknown = adapters.Where(name => !known.Contains(name)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"This {model.GetType().Name} has no adapter {string.Join(", ", unknown.Select(n => $"'{n}'"))}.", nameof(adapters));
        if (known.Contains(adapter))
            throw new ArgumentException($"This {model.GetType().Name} already has an adapter named '{adapter}'.", nameof(adapter));
        if (weights.Any(weight => !double.IsFinite(weight)))
            throw new ArgumentException("Every weight must be a finite number.", nameof(weights));

        var layers = LoraTree.Layers(model).Where(entry => adapters.Any(entry.Layer.AdapterNames.Contains)).ToList();
        var dora = adapters.Where(name => layers.Any(e => e.Layer.AdapterNames.Contains(name) && e.Layer.ConfigOf(name).UseDora)).ToList();
        if (dora.Count > 0)
            throw new ArgumentException(
                $"{string.Join(", ", dora.Select(n => $"'{n}'"))} {(dora.Count == 1 ? "is a DoRA adapter" : "are DoRA adapters")}: their magnitude vectors " +
                "rescale the whole weight and do not add up like B·A, so they cannot be combined. Combine plain LoRA adapters.", nameof(adapters));
        // As PEFT, the new rank comes from the adapters' largest ranks over the whole model.
        var ranks = adapters.Select(name => layers.Where(e => e.Layer.AdapterNames.Contains(name)).Max(e => e.Layer.ConfigOf(name).Rank)).ToList();
        if (adapters.Count == 1)
            combination = AdapterCombination.Linear;
        int rank = combination switch
        {
            AdapterCombination.Linear when ranks.Distinct().Count() > 1 => throw new ArgumentException(
                $"Linear combination needs adapters of one rank, but they have ranks {string.Join(", ", ranks)}: use Cat or Svd.", nameof(adapters)),
            AdapterCombination.Linear => ranks[0],
            AdapterCombination.Cat => ranks.Sum(),
            _ => svdRank ?? ranks.Max(),
        };
        if (rank < 1)
            throw new ArgumentException($"The combined rank must be at least 1, but it is {rank}.", nameof(svdRank));

        var first = layers.First(e => e.Layer.AdapterNames.Contains(adapters[0])).Layer.ConfigOf(adapters[0]);
        var config = first with { Rank = rank, Alpha = rank };
        var done = new List<LoraLayer>();
        try
        {
            foreach (var (_, layer) in layers)
            {
                layer.AddAdapter(adapter, config, LoraOptions.Default with { AllowNoSavings = true });
                done.Add(layer);
                Fill(layer, adapters, weights, adapter, combination, rank);
            }
        }
        catch
        {
            foreach (var layer in done)
                layer.DeleteAdapter(adapter);
            throw;
        }
    }

    private static void Fill(LoraLayer layer, IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string target,
        AdapterCombination combination, int rank)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (newA, newB) = layer.FactorsOf(target);
        var present = adapters.Select((name, i) => (Name: name, Weight: weights[i] * (layer.AdapterNames.Contains(name) ? layer.ConfigOf(name).Scaling : 0)))
            .Where(entry => layer.AdapterNames.Contains(entry.Name)).ToList();
        // Every factor as a matrix: A [r, in·k], B [out, r], so that B·A is the update in one layout for every kind.
        Tensor A(string name) => layer.FactorsOf(name).A.to(ScalarType.Float32).flatten(1);
        Tensor B(string name) => layer.FactorsOf(name).B.to(ScalarType.Float32).flatten(1);
        var a = zeros(rank, newA.flatten(1).shape[1]);
        var b = zeros(newB.shape[0], rank);
        switch (combination)
        {
            case AdapterCombination.Linear:
                foreach (var (name, ws) in present)
                {
                    a.add_(A(name), alpha: Math.Sign(ws) * Math.Sqrt(Math.Abs(ws)));
                    b.add_(B(name), alpha: Math.Sqrt(Math.Abs(ws)));
                }
                break;
            case AdapterCombination.Cat:
                long row = 0;
                foreach (var (name, ws) in present)
                {
                    var ai = A(name);
                    a.narrow(0, row, ai.shape[0]).copy_(ai * ws);
                    b.narrow(1, row, ai.shape[0]).copy_(B(name));
                    row += ai.shape[0];
                }
                break;
            default:
                var update = zeros(newB.shape[0], a.shape[1], dtype: ScalarType.Float64);
                foreach (var (name, ws) in present)
                    update.add_(B(name).to(ScalarType.Float64).matmul(A(name).to(ScalarType.Float64)), alpha: ws * layer.ConfigOf(name).Scaling);
                var (u, s, vh) = linalg.svd(update, fullMatrices: false);
                long kept = Math.Min(rank, s.shape[0]);
                b.narrow(1, 0, kept).copy_(u.narrow(1, 0, kept).mul(s.narrow(0, 0, kept)));
                a.narrow(0, 0, kept).copy_(vh.narrow(0, 0, kept));
                break;
        }
        newA.copy_(a.reshape(newA.shape));
        newB.copy_(b.reshape(newB.shape));
    }
}
