using System.Diagnostics;
using System.Globalization;
using LoraGen.Benchmarks.Suites;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary>Peak resident set (VmHWM) of this process, from /proc/self/status.</summary>
internal static class Rss
{
    public static long PeakBytes() => Read("VmHWM:");

    public static long CurrentBytes() => Read("VmRSS:");

    /// <summary>Linux clear_refs 5: VmHWM restarts from the current resident set.</summary>
    public static void ResetPeak() => File.WriteAllText("/proc/self/clear_refs", "5");

    private static long Read(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key, StringComparison.Ordinal));
        return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }
}

/// <summary>A frozen base layer with a plain-tensor LoRA adapter (A: r×in, B: out×r, B zero at start as PEFT):
/// y = base(x) + (x·Aᵀ·Bᵀ)·α/r. Only the <c>nf4-keep</c> mode of qlora-memory uses it now (a base forward that keeps
/// the dequantized weight in the graph, which LoraLinear never does); everything else goes through ApplyLora.</summary>
internal sealed class InlineAdapter
{
    private readonly Func<Tensor, Tensor> frozen;

    public InlineAdapter(Func<Tensor, Tensor> frozen, long inFeatures, long outFeatures, int rank, double alpha)
    {
        this.frozen = frozen;
        A = new TorchSharp.Modules.Parameter(randn(rank, inFeatures) * (1.0 / Math.Sqrt(inFeatures)));
        B = new TorchSharp.Modules.Parameter(zeros(outFeatures, rank));
        Scaling = alpha / rank;
    }

    public TorchSharp.Modules.Parameter A { get; }

    public TorchSharp.Modules.Parameter B { get; }

    public double Scaling { get; }

    public Tensor Forward(Tensor x) => frozen(x) + x.matmul(A.t()).matmul(B.t()) * Scaling;
}

/// <summary>
/// <c>qlora-memory [--mode lora|int8|nf4|nf4-dq|nf4-keep] [--steps 20] [--threads 1]</c>: workload (a) (4 ×
/// Linear(1024, 1024) + GELU in a Sequential, batch 64, r = 8 on every Linear, MSE, AdamW) through the library's
/// wiring: <c>ApplyLora(config, new LoraOptions { Quantize = kind })</c> (lora: no Quantize). Without --mode, runs every mode in a child process of its own (so each VmHWM is its own) and prints
/// all. <c>nf4-keep</c> is NF4 without the custom autograd function (W dequantized inside the graph, so autograd
/// keeps it until backward): what the recomputation saves.
/// </summary>
public static class QloraMemoryCommand
{
    private static readonly string[] Modes = ["lora", "int8", "nf4", "nf4-dq", "nf4-keep"];

    public static int Run(Arguments args)
    {
        var mode = args.Text("mode", "");
        if (mode.Length == 0)
        {
            foreach (var m in Modes)
                foreach (var line in Child(m, args.Number("steps", 20), args.Number("threads", 1)))
                    Console.WriteLine(line);
            return 0;
        }
        TorchThreads.Set(args.Number("threads", 1));
        var steps = args.Number("steps", 20);
        using (var warm = ones(64, 64))
            _ = warm.matmul(warm).sum().item<float>();
        Rss.ResetPeak();
        var baseline = Rss.CurrentBytes();

        manual_seed(1);
        const int width = 1024, rank = 8, layers = 4;
        if (mode != "nf4-keep")
            return RunWired(mode, steps, width, rank, layers, baseline);
        var adapters = new List<InlineAdapter>();
        var keep = new List<IDisposable>();
        long frozenBytes = 0;
        for (var i = 0; i < layers; i++)
        {
            var linear = nn.Linear(width, width);
            linear.weight!.requires_grad_(false);
            linear.bias!.requires_grad_(false);
            if (mode == "lora")
            {
                frozenBytes += (linear.weight.numel() + linear.bias.numel()) * 4;
                keep.Add(linear);
                adapters.Add(new InlineAdapter(linear.forward, width, width, rank, 16));
                continue;
            }
            var kind = mode switch
            {
                "int8" => QuantizationKind.Int8,
                "nf4-dq" => QuantizationKind.Nf4DoubleQuantized,
                _ => QuantizationKind.Nf4,
            };
            var q = QuantizedLinear.FromLinear(linear, kind);
            linear.Dispose();
            frozenBytes += q.WeightBytes + width * 4;
            keep.Add(q);
            Func<Tensor, Tensor> forward = mode == "nf4-keep"
                ? x => nn.functional.linear(x, q.Dequantize(), q.Bias)   // W enters the graph: kept until backward
                : q.forward;
            adapters.Add(new InlineAdapter(forward, width, width, rank, 16));
        }
        var parameters = adapters.SelectMany(a => new[] { a.A, a.B }).ToList();
        var optimizer = optim.AdamW(parameters, lr: 1e-3);
        var x = randn(64, width);
        var target = randn(64, width);

        var times = TimeSteps(steps, optimizer, () =>
        {
            var h = x;
            for (var i = 0; i < layers; i++)
            {
                h = adapters[i].Forward(h);
                if (i < layers - 1)
                    h = nn.functional.gelu(h);
            }
            return nn.functional.mse_loss(h, target);
        });
        return ReportRun(mode, frozenBytes, baseline, times);
    }

    // ApplyLora (with LoraOptions.Quantize for the QLoRA modes) on a Sequential of Linear + GELU.
    private static int RunWired(string mode, int steps, int width, int rank, int layers, long baseline)
    {
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (var i = 0; i < layers; i++)
        {
            modules.Add(($"{2 * i}", nn.Linear(width, width)));
            if (i < layers - 1)
                modules.Add(($"{2 * i + 1}", nn.GELU()));
        }
        var model = nn.Sequential(modules.ToArray());
        QuantizationKind? kind = mode switch
        {
            "lora" => null,
            "int8" => QuantizationKind.Int8,
            "nf4-dq" => QuantizationKind.Nf4DoubleQuantized,
            _ => QuantizationKind.Nf4,
        };
        var config = new LoraGen.Files.AdapterConfig
        {
            Rank = rank, Alpha = 16, TargetModules = [.. Enumerable.Range(0, layers).Select(i => $"{2 * i}")],
        };
        model.ApplyLora(config, new LoraOptions { Quantize = kind });
        long frozenBytes = model.LoraLayers().Sum(entry => entry.Layer.QuantizedBase is { } q
            ? q.WeightBytes + q.OutFeatures * 4
            : entry.Layer.BaseLayer.parameters().Sum(p => p.numel() * p.element_size()));
        var optimizer = optim.AdamW(model.LoraParameters(), lr: 1e-3);
        var x = randn(64, width);
        var target = randn(64, width);
        var times = TimeSteps(steps, optimizer, () => nn.functional.mse_loss(model.call(x), target));
        return ReportRun(mode, frozenBytes, baseline, times);
    }

    // Each step's wall time: zero the gradients, the loss, backward, the optimizer step, in one dispose scope.
    private static List<double> TimeSteps(int steps, optim.Optimizer optimizer, Func<Tensor> loss)
    {
        var times = new List<double>();
        for (var s = 0; s < steps; s++)
        {
            var watch = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                loss().backward();
                optimizer.step();
            }
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        return times;
    }

    // One mode's lines: frozen weight bytes, peak RSS (and over the process baseline), median step after 2 warm-up steps.
    private static int ReportRun(string mode, long frozenBytes, long baseline, List<double> times)
    {
        var median = times.Skip(2).Order().ElementAt((times.Count - 2) / 2);
        var prefix = $"mlp.qlora.{mode}";
        Report.Line($"{prefix}.frozen_weight_mb", frozenBytes / 1e6);
        Report.Line($"{prefix}.peak_rss_mb", Rss.PeakBytes() / 1e6);
        Report.Line($"{prefix}.baseline_rss_mb", baseline / 1e6);
        Report.Line($"{prefix}.peak_rss_over_baseline_mb", (Rss.PeakBytes() - baseline) / 1e6);
        Report.Line($"{prefix}.step_ms_median", median);
        return 0;
    }

    private static IReadOnlyList<string> Child(string mode, int steps, int threads)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            start.ArgumentList.Add(typeof(QloraMemoryCommand).Assembly.Location);
        foreach (var arg in new[] { "qlora-memory", "--mode", mode, "--steps", steps.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0)
            throw new InvalidOperationException($"qlora-memory {mode} exited with {child.ExitCode}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}

/// <summary>
/// <c>qlora-7b [--layers 32] [--threads 2] [--kind nf4-dq|nf4|int8] [--steps 1]</c>: one LoRA training step of a
/// decoder shaped like Llama-7B (32 layers, width 4096, 32 heads, SiLU MLP 11008, vocabulary 32000; RMSNorm, causal
/// attention, no rotary embedding) with random weights created one matrix at a time and quantized as they are made,
/// never all in float. Every Linear, the LM head included, is a QuantizedLinear; the token embedding stays float32
/// (a lookup, 0.5 GB). LoRA r = 8, α = 16 on q and v (<see cref="LoraLinear"/> over the QuantizedLinear), AdamW, batch
/// 1, sequence 16, next-token cross-entropy. Reports peak RSS (VmHWM) and the step time.
/// </summary>
public static class Qlora7bCommand
{
    private const int Width = 4096, Heads = 32, Mlp = 11008, Vocabulary = 32000, Sequence = 16, Rank = 8;
    private static readonly LoraConfig Adapter = new() { Rank = Rank, Alpha = 16 };

    private sealed class Block
    {
        public required Tensor AttentionNorm, MlpNorm;
        public required LoraLinear Q, V;
        public required QuantizedLinear K, O, Gate, Up, Down;
    }

    public static int Run(Arguments args)
    {
        var layers = args.Number("layers", 32);
        var steps = args.Number("steps", 1);
        TorchThreads.Set(args.Number("threads", 2));
        var kind = args.Text("kind", "nf4-dq") switch
        {
            "nf4" => QuantizationKind.Nf4,
            "int8" => QuantizationKind.Int8,
            _ => QuantizationKind.Nf4DoubleQuantized,
        };
        manual_seed(7);
        var build = Stopwatch.StartNew();
        long quantizedBytes = 0, floatEquivalent = 0;

        QuantizedLinear Make(long outFeatures, long inFeatures)
        {
            using var scope = NewDisposeScope();
            var w = randn(outFeatures, inFeatures).mul_(0.02);
            var q = QuantizedLinear.FromWeight(w, null, kind);
            quantizedBytes += q.WeightBytes;
            floatEquivalent += outFeatures * inFeatures * 4;
            return q;
        }

        var embedding = randn(Vocabulary, Width).mul_(0.02);
        var blocks = new List<Block>();
        for (var l = 0; l < layers; l++)
        {
            var q = Make(Width, Width);
            var v = Make(Width, Width);
            blocks.Add(new Block
            {
                AttentionNorm = ones(Width), MlpNorm = ones(Width),
                Q = new LoraLinear(q, Adapter), K = Make(Width, Width),
                V = new LoraLinear(v, Adapter), O = Make(Width, Width),
                Gate = Make(Mlp, Width), Up = Make(Mlp, Width), Down = Make(Width, Mlp),
            });
            if (l % 8 == 7)
                Console.Error.WriteLine($"  built {l + 1} layers, {build.Elapsed.TotalSeconds:0}s, rss {Rss.CurrentBytes() / 1e9:0.00} GB");
        }
        var finalNorm = ones(Width);
        var head = Make(Vocabulary, Width);
        var buildSeconds = build.Elapsed.TotalSeconds;
        var afterBuild = Rss.CurrentBytes();

        var parameters = blocks.SelectMany(b => b.Q.NamedAdapterParameters.Concat(b.V.NamedAdapterParameters))
            .Select(entry => entry.Parameter).ToList();
        var optimizer = optim.AdamW(parameters, lr: 1e-4);

        // Where a step's time goes: one MLP matrix (11008 × 4096) generated, quantized, dequantized.
        using (NewDisposeScope())
        {
            var probe = Stopwatch.StartNew();
            var w = randn(Mlp, Width);
            var randnMs = probe.Elapsed.TotalMilliseconds;
            probe.Restart();
            using var q = QuantizedLinear.FromWeight(w, null, kind);
            var quantizeMs = probe.Elapsed.TotalMilliseconds;
            probe.Restart();
            var d = q.Dequantize();
            var dequantizeMs = probe.Elapsed.TotalMilliseconds;
            probe.Restart();
            _ = randn(Sequence, Width).matmul(d.t());
            var matmulMs = probe.Elapsed.TotalMilliseconds;
            Report.Line("qlora7b.probe_mlp_matrix_randn_ms", randnMs);
            Report.Line("qlora7b.probe_mlp_matrix_quantize_ms", quantizeMs);
            Report.Line("qlora7b.probe_mlp_matrix_dequantize_ms", dequantizeMs);
            Report.Line("qlora7b.probe_mlp_matrix_matmul_16_tokens_ms", matmulMs);
        }
        var tokens = randint(0, Vocabulary, [1, Sequence + 1], dtype: ScalarType.Int64);
        var input = tokens.narrow(1, 0, Sequence);
        var labels = tokens.narrow(1, 1, Sequence).reshape(-1);
        using var mask = ones(Sequence, Sequence, dtype: ScalarType.Bool).triu(1);

        Tensor Norm(Tensor x, Tensor weight) => x * (x.pow(2).mean([-1], keepdim: true) + 1e-6).rsqrt() * weight;

        var stepTimes = new List<double>();
        double loss = 0;
        for (var s = 0; s < steps; s++)
        {
            var watch = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                var h = embedding.index_select(0, input.reshape(-1)).view(1, Sequence, Width);
                foreach (var block in blocks)
                {
                    var n = Norm(h, block.AttentionNorm);
                    var headDim = Width / Heads;
                    var q = block.Q.call(n).view(1, Sequence, Heads, headDim).transpose(1, 2);
                    var k = block.K.forward(n).view(1, Sequence, Heads, headDim).transpose(1, 2);
                    var v = block.V.call(n).view(1, Sequence, Heads, headDim).transpose(1, 2);
                    var scores = q.matmul(k.transpose(2, 3)) / Math.Sqrt(headDim);
                    var attention = nn.functional.softmax(scores.masked_fill(mask, float.NegativeInfinity), -1).matmul(v);
                    h = h + block.O.forward(attention.transpose(1, 2).reshape(1, Sequence, Width));
                    n = Norm(h, block.MlpNorm);
                    h = h + block.Down.forward(nn.functional.silu(block.Gate.forward(n)) * block.Up.forward(n));
                }
                var logits = head.forward(Norm(h, finalNorm)).view(Sequence, Vocabulary);
                var lossTensor = nn.functional.cross_entropy(logits, labels);
                lossTensor.backward();
                optimizer.step();
                loss = lossTensor.item<float>();
            }
            stepTimes.Add(watch.Elapsed.TotalSeconds);
        }

        var frozenParameters = floatEquivalent / 4 + (long)Vocabulary * Width;
        Report.Line("qlora7b.layers", layers);
        Report.Line("qlora7b.kind", kind.ToString());
        Report.Line("qlora7b.frozen_parameters_billion", frozenParameters / 1e9);
        Report.Line("qlora7b.float32_linear_weights_gb", floatEquivalent / 1e9);
        Report.Line("qlora7b.quantized_linear_weights_gb", quantizedBytes / 1e9);
        Report.Line("qlora7b.embedding_float32_gb", (long)Vocabulary * Width * 4 / 1e9);
        Report.Line("qlora7b.trainable_parameters", parameters.Sum(p => p.numel()));
        Report.Line("qlora7b.build_seconds", buildSeconds);
        Report.Line("qlora7b.rss_after_build_gb", afterBuild / 1e9);
        Report.Line("qlora7b.step_seconds", stepTimes[0]);
        if (stepTimes.Count > 1)
            Report.Line("qlora7b.step_seconds_last", stepTimes[^1]);
        Report.Line("qlora7b.loss", loss);
        Report.Line("qlora7b.peak_rss_gb", Rss.PeakBytes() / 1e9);
        Report.Line("qlora7b.peak_rss_gib", Rss.PeakBytes() / (double)(1L << 30));
        return 0;
    }
}
