using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Workloads;

/// <summary>
/// Serving several adapters of one base: <see cref="AdapterCount"/> named adapters (random weights) on a workload's
/// model in eval mode under no_grad, and a batch of <see cref="AdapterCount"/> × <see cref="PerAdapter"/> samples (from the workload's batch), the i-th
/// block of <see cref="PerAdapter"/> samples for adapter i. <see cref="Mixed"/> runs it as one forward, each sample through
/// its own adapter (<c>AdapterPerSample</c>); <see cref="Separate"/> as one forward per adapter, switched with
/// <c>SetActiveAdapters</c> before each (the switch is part of the cost).
/// </summary>
public sealed class MixedBatchSession : IDisposable
{
    public const int AdapterCount = 4;

    private readonly nn.Module<Tensor, Tensor> model;
    private readonly Tensor batch;
    private readonly Tensor[] parts;
    private readonly string[] adapters;
    private readonly string[] perSample;

    /// <summary>Samples per adapter: as asked, or as many as the workload's batch holds.</summary>
    public int PerAdapter { get; }

    public MixedBatchSession(Workload workload, int perAdapter)
    {
        manual_seed(0);
        model = workload.CreateModel();
        workload.ApplyLora(model);
        adapters = [.. Enumerable.Range(0, AdapterCount).Select(i => i == 0 ? LoraLayer.DefaultAdapter : $"adapter{i}")];
        foreach (var adapter in adapters.Skip(1))
            workload.AddAdapter(model, adapter);
        // A fresh adapter has B = 0; give every adapter weight values so each update is real, and different, work.
        using (no_grad())
            foreach (var parameter in model.LoraParameters(adapters))
                parameter.normal_(0, 0.01);
        model.eval();
        var (input, target) = workload.CreateBatch();
        target.Dispose();
        // Workload (c)'s batch of 16 holds 4 samples per adapter at most.
        PerAdapter = perAdapter = (int)Math.Min(perAdapter, input.shape[0] / AdapterCount);
        batch = input.narrow(0, 0, AdapterCount * perAdapter).clone();
        input.Dispose();
        parts = [.. Enumerable.Range(0, AdapterCount).Select(i => batch.narrow(0, i * perAdapter, perAdapter).clone())];
        perSample = [.. Enumerable.Range(0, AdapterCount * perAdapter).Select(i => adapters[i / perAdapter])];
    }

    /// <summary>One forward of the whole batch, sample i through adapter perSample[i].</summary>
    public void Mixed()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using (model.AdapterPerSample(perSample))
            model.call(batch);
    }

    /// <summary>One forward per adapter, on its own samples, after switching to it.</summary>
    public void Separate()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        for (int i = 0; i < AdapterCount; i++)
        {
            model.SetActiveAdapters(adapters[i]);
            model.call(parts[i]);
        }
    }

    /// <summary>The largest |difference| between the mixed forward's outputs and the separate forwards'.</summary>
    public double MaxDifference()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor mixed;
        using (model.AdapterPerSample(perSample))
            mixed = model.call(batch);
        var separate = cat([.. Enumerable.Range(0, AdapterCount).Select(i =>
        {
            model.SetActiveAdapters(adapters[i]);
            return model.call(parts[i]);
        })], 0);
        return (mixed - separate).abs().max().item<float>();
    }

    public void Dispose()
    {
        model.Dispose();
        batch.Dispose();
        foreach (var part in parts)
            part.Dispose();
    }
}
