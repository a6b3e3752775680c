using System.Diagnostics;
using LoraGen.Benchmarks.Suites;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary><c>qlora-probe</c>: where a QuantizedLinear's training step goes (1024 × 1024, batch 64): dequantize
/// alone, forward + backward through the custom function, with W kept in the graph, and a float Linear.</summary>
public static class QloraProbeCommand
{
    public static int Run(Arguments args)
    {
        TorchThreads.Set(args.Number("threads", 1));
        int repeats = args.Number("repeats", 30);
        manual_seed(1);
        using var linear = nn.Linear(1024, 1024);
        using var q = QuantizedLinear.FromLinear(linear, QuantizationKind.Nf4);
        var x = randn(64, 1024).requires_grad_(true);
        double Time(Action action)
        {
            action();
            var times = new List<double>();
            for (int i = 0; i < repeats; i++)
            {
                var watch = Stopwatch.StartNew();
                using (NewDisposeScope())
                    action();
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
            return times.Order().ElementAt(times.Count / 2);
        }
        Report.Line("probe.dequantize_ms", Time(() => q.Dequantize()));
        Report.Line("probe.function_forward_ms", Time(() => q.forward(x)));
        Report.Line("probe.function_forward_backward_ms", Time(() => { q.forward(x).sum().backward(); x.grad?.zero_(); }));
        Report.Line("probe.keep_forward_backward_ms", Time(() =>
        {
            var w = q.Dequantize();
            nn.functional.linear(x, w, q.Bias).sum().backward();
            x.grad?.zero_();
        }));
        Report.Line("probe.float_forward_backward_ms", Time(() => { linear.forward(x).sum().backward(); x.grad?.zero_(); }));
        var layers = Enumerable.Range(0, 4).Select(_ => QuantizedLinear.FromLinear(linear, QuantizationKind.Nf4)).ToList();
        Report.Line("probe.chain4_function_ms", Time(() =>
        {
            var h = x;
            foreach (var layer in layers)
                h = nn.functional.gelu(layer.forward(h));
            h.sum().backward();
            x.grad?.zero_();
        }));
        Report.Line("probe.chain4_keep_ms", Time(() =>
        {
            var h = x;
            foreach (var layer in layers)
                h = nn.functional.gelu(nn.functional.linear(h, layer.Dequantize(), layer.Bias));
            h.sum().backward();
            x.grad?.zero_();
        }));
        ProbeFunction.Reset();
        Report.Line("probe.chain4_probefn_ms", Time(() =>
        {
            var h = x;
            foreach (var layer in layers)
                h = nn.functional.gelu(ProbeFunction.apply(h, layer));
            h.sum().backward();
            x.grad?.zero_();
        }));
        Report.Line("probe.probefn_forward_ms_total", ProbeFunction.Forward.Elapsed.TotalMilliseconds);
        Report.Line("probe.probefn_backward_ms_total", ProbeFunction.Backward.Elapsed.TotalMilliseconds);
        Report.Line("probe.probefn_calls", ProbeFunction.Calls);
        Report.Line("probe.probefn_forward_product_ms_total", ProbeFunction.Product.Elapsed.TotalMilliseconds);
        Report.Line("probe.threads", get_num_threads());
        return 0;
    }
}

internal sealed class ProbeFunction : autograd.SingleTensorFunction<ProbeFunction>
{
    public static Stopwatch Forward = new(), Backward = new(), Product = new();
    public static int Calls;

    public static void Reset()
    {
        Forward.Reset();
        Backward.Reset();
        Calls = 0;
    }

    public override string Name => nameof(ProbeFunction);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        Forward.Start();
        var x = (Tensor)vars[0];
        var layer = (QuantizedLinear)vars[1];
        ctx.save_data("layer", layer);
        using var weight = layer.Dequantize();
        Forward.Stop();
        Product.Start();
        var y = nn.functional.linear(x, weight);
        Product.Stop();
        return y;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        Backward.Start();
        Calls++;
        var layer = (QuantizedLinear)ctx.get_data("layer");
        using var weight = layer.Dequantize();
        var g = grad_output.matmul(weight);
        Backward.Stop();
        return [g, null!];
    }
}
