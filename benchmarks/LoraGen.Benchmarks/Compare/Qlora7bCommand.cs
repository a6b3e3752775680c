using System.Diagnostics;
using LoraGen.Benchmarks.Suites;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary>
/// <c>qlora-7b [--layers 32] [--threads 2] [--kind nf4-dq|nf4|int8] [--embedding quantized|float] [--steps 1]</c>: one LoRA training step of a
/// decoder shaped like Llama-7B (32 layers, width 4096, 32 heads, SiLU MLP 11008, vocabulary 32000; RMSNorm, causal
/// attention, no rotary embedding) with random weights created one matrix at a time and quantized as they are made,
/// never all in float. Every Linear, the LM head included, is a QuantizedLinear; the token embedding is a
/// QuantizedEmbedding of the same kind (<c>--embedding float</c>: a float32 table, 0.5 GB). LoRA r = 8, α = 16 on q and v (<see cref="LoraLinear"/> over the QuantizedLinear), AdamW, batch
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

        var floatEmbedding = args.Text("embedding", "quantized") == "float";
        nn.Module<Tensor, Tensor> embedding;
        using (var scope = NewDisposeScope())
        {
            var table = randn(Vocabulary, Width).mul_(0.02);
            embedding = floatEmbedding ? nn.Embedding_from_pretrained(table.MoveToOuterDisposeScope()) : QuantizedEmbedding.FromWeight(table, kind);
        }
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
                var h = embedding.call(input.reshape(-1)).view(1, Sequence, Width);
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
        Report.Line("qlora7b.embedding_gb", embedding is QuantizedEmbedding quantizedTable ? quantizedTable.WeightBytes / 1e9 : (long)Vocabulary * Width * 4 / 1e9);
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
