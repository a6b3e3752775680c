using System.Diagnostics;
using LoraGen;
using LoraGen.Benchmarks.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.GpuCheck;

/// <summary>One timed training run of the MLP: LoRA (adapters only) or full fine-tuning, on a device and dtype.</summary>
internal static class TrainingStep
{
    public sealed record Result(string Mode, string Device, string DType, double MillisecondsPerStep, double FirstLoss, double LastLoss, long TrainableParameters);

    public static Result Run(bool lora, Device device, ScalarType dtype, int warmup, int steps)
    {
        torch.manual_seed(0);
        var model = new Mlp();
        model.to(device).to(dtype); // move first: adapters are created on the base's device, the optimizer after
        long trainable = lora
            ? model.ApplyLora().TrainableParameters
            : model.parameters().Sum(p => p.numel());
        var parameters = lora ? model.LoraParameters() : model.parameters().ToList();
        var optimizer = optim.AdamW(parameters, lr: 1e-3);
        var x = randn(64, Mlp.Width, device: device, dtype: dtype);
        var target = randn(64, Mlp.Width, device: device, dtype: dtype);

        // Only the ends of a timed run read the loss back: that read synchronizes the device, so the clock
        // sees all the queued work, and no step in between waits for the GPU.
        double Step(bool readBack)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.mse_loss(model.call(x).to(float32), target.to(float32));
            loss.backward();
            optimizer.step();
            return readBack ? loss.item<float>() : double.NaN;
        }

        double first = Step(readBack: true);
        for (int i = 1; i < warmup; i++) Step(readBack: false);
        Step(readBack: true);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps - 1; i++) Step(readBack: false);
        double last = Step(readBack: true);
        clock.Stop();
        return new Result(lora ? "lora" : "full", device.ToString(), dtype.ToString(), clock.Elapsed.TotalMilliseconds / steps, first, last, trainable);
    }
}
