using TorchSharp.Modules;
using LoraGen.Benchmarks.Workloads;

namespace LoraGen.Benchmarks.Compare;

/// <summary>
/// Bytes of the tensors a training session keeps alive between steps: the model's parameters (trained
/// or frozen), the buffers of its quantized layers (QLoRA's frozen weights: codes, scales, bias), the gradients of
/// the trained parameters, and AdamW's two moment tensors per trained parameter.
/// Activations saved for backward live only inside a step and are not counted here; the process's
/// peak working set covers them.
/// </summary>
public sealed record TrainingMemory(long ParameterBytes, long QuantizedBytes, long GradientBytes, long OptimizerBytes)
{
    public long Total => ParameterBytes + QuantizedBytes + GradientBytes + OptimizerBytes;

    public static TrainingMemory Of(TrainingSession session)
    {
        long parameters = session.Model.parameters().Sum(p => p.numel() * p.element_size());
        long quantized = session.Model.modules().Where(m => m is QuantizedLinear or QuantizedEmbedding)
            .Sum(q => q.buffers().Sum(b => b.numel() * b.element_size()));
        long gradients = session.Model.parameters().Select(p => p.grad).OfType<TorchSharp.torch.Tensor>()
            .Sum(g => g.numel() * g.element_size());
        long optimizer = session.Optimizer.state_dict().State.OfType<AdamW.State>()
            .Sum(s => Bytes(s.exp_avg) + Bytes(s.exp_avg_sq) + Bytes(s.max_exp_avg_sq));
        return new TrainingMemory(parameters, quantized, gradients, optimizer);
    }

    private static long Bytes(TorchSharp.torch.Tensor? t) => t is null ? 0 : t.numel() * t.element_size();
}
