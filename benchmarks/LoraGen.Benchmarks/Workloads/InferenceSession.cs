using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Workloads;

/// <summary>How an inference session runs its model.</summary>
public enum InferenceMode
{
    /// <summary>The plain model, never wrapped.</summary>
    Base,

    /// <summary>Wrapped, adapters computed beside the base layers at every call.</summary>
    Unmerged,

    /// <summary>Wrapped, adapters merged into the base weights.</summary>
    Merged,
}

/// <summary>One model in eval mode under no_grad, run on one fixed batch.</summary>
public sealed class InferenceSession : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> model;
    private readonly Tensor input;

    public InferenceSession(Workload workload, InferenceMode mode)
    {
        manual_seed(0);
        model = workload.CreateModel();
        if (mode != InferenceMode.Base)
        {
            workload.ApplyLora(model);
            // A fresh adapter has B = 0; give every adapter weight values so the update is real work.
            using (no_grad())
                foreach (var parameter in model.LoraParameters())
                    parameter.normal_(0, 0.01);
            if (mode == InferenceMode.Merged)
                model.Merge();
        }
        model.eval();
        (input, var target) = workload.CreateBatch();
        target.Dispose();
    }

    /// <summary>One forward pass; the output is disposed with the call's scope.</summary>
    public void Forward()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        model.call(input);
    }

    public void Dispose()
    {
        model.Dispose();
        input.Dispose();
    }
}
