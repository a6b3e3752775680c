using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>One optimizer parameter group of LoRA+ (<see cref="LoraPlusExtensions.LoraPlusGroups"/>).</summary>
/// <param name="Name">PEFT's name for the group: <c>groupA</c>, <c>embedding</c>, <c>groupB</c>, <c>groupB_no_decay</c>.</param>
/// <param name="Parameters">Its parameters, in the model's order.</param>
/// <param name="LearningRate">Its learning rate.</param>
/// <param name="WeightDecay">Its weight decay.</param>
public sealed record LoraPlusGroup(string Name, IReadOnlyList<Parameter> Parameters, double LearningRate, double WeightDecay);

/// <summary>
/// LoRA+ (Hayou et al., 2024): B learns λ times faster than A. The groups are PEFT's <c>create_loraplus_optimizer</c>'s,
/// parameter for parameter: every trainable parameter of a LoRA <em>embedding</em> layer gets
/// <c>embeddingLearningRate</c> (PEFT's <c>loraplus_lr_embedding</c>, 1e-6 by default); otherwise <c>lora_B</c> and every
/// 1-D parameter (biases, DoRA's Linear/Embedding magnitude vectors) get <c>learningRate · ratio</c>; everything else
/// (A, a convolution's 4-D magnitude, trained modules' weights) gets <c>learningRate</c>. B-group parameters in a
/// LayerNorm or with "bias" in their name get no weight decay (PEFT's <c>groupB_no_decay</c>).
/// </summary>
public static class LoraPlusExtensions
{
    /// <summary>The trainable parameters in PEFT's LoRA+ groups; empty groups are left out.</summary>
    /// <param name="model">A model with LoRA applied.</param>
    /// <param name="learningRate">ηA, the learning rate of A.</param>
    /// <param name="ratio">ηB / ηA (PEFT's <c>loraplus_lr_ratio</c>; the paper suggests 16).</param>
    /// <param name="embeddingLearningRate">The learning rate of embedding adapters (PEFT's <c>loraplus_lr_embedding</c>).</param>
    /// <param name="weightDecay">PEFT's <c>loraplus_weight_decay</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A rate is not finite and positive, or the weight decay is negative.</exception>
    public static IReadOnlyList<LoraPlusGroup> LoraPlusGroups(this nn.Module model, double learningRate, double ratio = 16,
        double embeddingLearningRate = 1e-6, double weightDecay = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var (value, name) in new[] { (learningRate, nameof(learningRate)), (ratio, nameof(ratio)), (embeddingLearningRate, nameof(embeddingLearningRate)) })
            if (!double.IsFinite(value) || value <= 0)
                throw new ArgumentOutOfRangeException(name, value, "must be a finite number greater than 0.");
        if (!double.IsFinite(weightDecay) || weightDecay < 0)
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "must be a finite number of at least 0.");

        var modules = LoraTree.Modules(model).ToDictionary(entry => entry.Path, entry => entry.Module, StringComparer.Ordinal);
        var layerNorms = modules.Where(entry => entry.Value is LayerNorm).Select(entry => entry.Key).ToList();
        var groupA = new List<Parameter>();
        var embedding = new List<Parameter>();
        var groupB = new List<Parameter>();
        var groupBNoDecay = new List<Parameter>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (!parameter.requires_grad)
                continue;
            // PEFT: the module two levels up (lora_embedding_A.default → the LoRA embedding layer).
            var parts = name.Split('.');
            var owner = parts.Length > 2 && modules.TryGetValue(string.Join('.', parts[..^2]), out var module) ? module : null;
            if (owner is LoraEmbedding)
                embedding.Add(parameter);
            else if (name.Contains(PeftLayout.LoraB, StringComparison.Ordinal) || parameter.dim() == 1)
            {
                bool decays = !name.Contains("bias", StringComparison.Ordinal)
                    && !layerNorms.Any(norm => norm.Length == 0 || name.StartsWith(norm + ".", StringComparison.Ordinal));
                (decays ? groupB : groupBNoDecay).Add(parameter);
            }
            else
                groupA.Add(parameter);
        }
        var groups = new List<LoraPlusGroup>
        {
            new("groupA", groupA, learningRate, weightDecay),
            new("embedding", embedding, embeddingLearningRate, weightDecay),
            new("groupB", groupB, learningRate * ratio, weightDecay),
            new("groupB_no_decay", groupBNoDecay, learningRate * ratio, 0),
        };
        return groups.Where(group => group.Parameters.Count > 0).ToList();
    }

    /// <summary>PEFT's LoRA+ groups (<see cref="LoraPlusGroups"/>) as TorchSharp's AdamW takes them:
    /// <c>torch.optim.AdamW(model.LoraPlusParameterGroups(2e-4))</c>. The other AdamW settings are PEFT's defaults
    /// (β = 0.9, 0.999; ε = 1e-8).</summary>
    public static IReadOnlyList<AdamW.ParamGroup> LoraPlusParameterGroups(this nn.Module model, double learningRate, double ratio = 16,
        double embeddingLearningRate = 1e-6, double weightDecay = 0) =>
        model.LoraPlusGroups(learningRate, ratio, embeddingLearningRate, weightDecay)
            .Select(group => new AdamW.ParamGroup(group.Parameters, group.LearningRate, 0.9, 0.999, 1e-8, group.WeightDecay, false, false))
            .ToList();
}
