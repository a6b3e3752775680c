using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Workloads;

/// <summary>How a training session trains its model.</summary>
public enum TrainingMode
{
    /// <summary>Every parameter trained (full fine-tuning).</summary>
    Full,

    /// <summary>ApplyLora, then only the adapters trained.</summary>
    Lora,

    /// <summary>As <see cref="Lora"/>, with DoRA adapters (same targets, ranks and alphas, UseDora) instead.</summary>
    Dora,
}

/// <summary>
/// A model, its AdamW optimizer and one fixed batch: <see cref="Step"/> is one training step
/// (forward, loss, backward, optimizer step, zero grad) in its own dispose scope, as a user writes it.
/// </summary>
public sealed class TrainingSession : IDisposable
{
    private readonly Tensor input;
    private readonly Tensor target;

    /// <param name="quantize">For LoRA: the adapted layers' frozen bases and every other frozen Linear stored in this
    /// format (QLoRA, <see cref="LoraOptions.Quantize"/>); <see cref="QuantizationKind.None"/>: float32.</param>
    /// <param name="quantizeEmbeddings">With <paramref name="quantize"/>: the frozen embeddings too
    /// (<see cref="LoraOptions.QuantizeFrozenEmbeddings"/>).</param>
    /// <param name="pretrained">A Hugging Face checkpoint of the workload's model: built without weights and loaded from
    /// it, with <paramref name="quantize"/> straight into quantized Linears; null: built with new (seeded) weights.</param>
    public TrainingSession(Workload workload, TrainingMode mode, QuantizationKind quantize = QuantizationKind.None,
        bool quantizeEmbeddings = false, string? pretrained = null)
    {
        if (quantize != QuantizationKind.None && mode != TrainingMode.Lora)
            throw new ArgumentException($"a quantized base is for LoRA training, not {mode}", nameof(quantize));
        Workload = workload;
        Mode = mode;
        manual_seed(0);
        Model = pretrained is null ? workload.CreateModel() : Load(workload, pretrained, quantize);
        if (mode != TrainingMode.Full)
            workload.ApplyLora(Model, new LoraOptions { Quantize = quantize, QuantizeFrozenLinears = true, QuantizeFrozenEmbeddings = quantizeEmbeddings });
        if (mode == TrainingMode.Dora)
            foreach (var (_, layer) in Model.LoraLayers())
            {
                layer.AddAdapter("dora", layer.ConfigOf(LoraLayer.DefaultAdapter) with { UseDora = true });
                layer.SetActiveAdapters(["dora"]);
            }
        Parameters = mode != TrainingMode.Full ? Model.LoraParameters() : [.. Model.parameters()];
        Optimizer = optim.AdamW(Parameters, lr: 1e-4);
        (input, target) = workload.CreateBatch();
        Model.train();
    }

    private static nn.Module<Tensor, Tensor> Load(Workload workload, string pretrained, QuantizationKind quantize)
    {
        var model = EmptyWeights.Create(workload.CreateModel);
        model.LoadPretrained(pretrained, new PretrainedLoadOptions { Quantize = quantize, KeepInFloat = workload.TrainedInFull ?? [] });
        return model;
    }

    public Workload Workload { get; }

    public TrainingMode Mode { get; }

    public nn.Module<Tensor, Tensor> Model { get; }

    /// <summary>The parameters the optimizer updates.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    public AdamW Optimizer { get; }

    /// <summary>One training step; returns the loss.</summary>
    public float Step()
    {
        using var scope = NewDisposeScope();
        var loss = Workload.Loss(Model.call(input), target);
        loss.backward();
        Optimizer.step();
        Optimizer.zero_grad();
        return loss.item<float>();
    }

    /// <summary>One training step timed in parts, for profiling: forward + loss, backward, optimizer.</summary>
    public (double ForwardMs, double BackwardMs, double OptimizerMs) ProfiledStep()
    {
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        var loss = Workload.Loss(Model.call(input), target);
        _ = loss.item<float>();
        var forward = clock.Elapsed.TotalMilliseconds;
        loss.backward();
        var backward = clock.Elapsed.TotalMilliseconds;
        Optimizer.step();
        Optimizer.zero_grad();
        var total = clock.Elapsed.TotalMilliseconds;
        return (forward, backward - forward, total - backward);
    }

    public void Dispose()
    {
        Optimizer.Dispose();
        Model.Dispose();
        input.Dispose();
        target.Dispose();
    }
}
