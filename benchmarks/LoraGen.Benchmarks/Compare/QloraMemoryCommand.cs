using System.Diagnostics;
using System.Globalization;
using LoraGen.Benchmarks.Suites;
using LoraGen.Benchmarks.Workloads;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary>
/// <c>qlora-memory [--workloads mlp,bert] [--modes full,lora,int8,nf4,nf4-dq] [--steps 20] [--warm-steps 60]
/// [--allocators glibc,mmap128k] [--threads 1]</c>: issue 19's table. Per workload, allocator and mode, in a process of
/// its own: frozen-weight bytes, the tensors kept between steps (<see cref="TrainingMemory"/>), peak RSS while loading
/// the model, peak RSS while training, and the median step. <c>full</c> trains every parameter; <c>lora</c> is the
/// workload's LoRA over float32; the QLoRA modes are the same LoRA with <c>LoraOptions { Quantize = kind,
/// QuantizeFrozenLinears = true }</c> (every frozen Linear quantized); <c>nf4-emb</c> (not in the default list) adds
/// <c>QuantizeFrozenEmbeddings</c>.
/// </summary>
/// <remarks>
/// <para>Every mode fine-tunes a pretrained model, as QLoRA is used: this process writes the workload's weights (seed 0)
/// as a Hugging Face checkpoint in a scratch folder, and each child builds the model with
/// <see cref="EmptyWeights"/> and <see cref="CheckpointExtensions.LoadPretrained"/> from it, the QLoRA modes with
/// <c>PretrainedLoadOptions { Quantize = kind }</c>, so their float weights never exist whole (the issue's "loading
/// straight into 4-bit"; the build peak shows it). A child started by hand without <c>--pretrained DIR</c> builds the
/// model in float instead and lets ApplyLora quantize it.</para>
/// <para>What "over baseline" means: before measuring, the process trains the same workload in the same mode
/// (<c>--warm-steps</c>, enough for .NET's tiered JIT to finish compiling the step's code), disposes it and hands freed
/// memory back to the OS (<see cref="Rss.ReleaseFreeMemory"/>); the baseline is the resident set then. So the runtime,
/// libtorch, and the compiled code of this mode's step are in the baseline, and what is over it is this model's
/// weights, activations, gradients, optimizer state and buffers. The training peak restarts (clear_refs) after the
/// model is built and freed memory released, so a float model that ApplyLora quantized and disposed shows in the build
/// peak, not in the training peak.</para>
/// <para>Allocators (<see cref="Allocators"/>): <c>glibc</c> is the process as started; <c>mmap128k</c> sets glibc's
/// mmap threshold to 128 KiB (<c>GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072</c>), which turns off its dynamic
/// threshold. By default glibc raises the threshold to the size of the largest block freed so far (up to 32 MiB), so
/// after the first 4 MB weight is freed every tensor comes from the heap, and freed tensors stay resident as holes the
/// next steps scatter into: the training peak then follows the heap's size, not the memory in use.</para>
/// </remarks>
public static class QloraMemoryCommand
{
    private static readonly string[] AllModes = ["full", "lora", "int8", "nf4", "nf4-dq"];

    /// <summary>The allocator settings a child process can run under: name → GLIBC_TUNABLES (empty: as started).</summary>
    private static readonly Dictionary<string, string> Allocators = new()
    {
        ["glibc"] = "",
        ["mmap128k"] = "glibc.malloc.mmap_threshold=131072",
    };

    public static int Run(Arguments args)
    {
        var steps = args.Number("steps", 20);
        if (steps < 3)
            throw new ArgumentException($"--steps {steps}: the median step leaves out the first two, so at least 3 are needed");
        var warmSteps = args.Number("warm-steps", 60);
        var threads = args.Number("threads", 1);
        var mode = args.Text("mode", "");
        if (mode.Length > 0)
        {
            var pretrained = args.Text("pretrained", "");
            return Measure(Workloads.Workloads.Named(args.Text("workload", "mlp")), mode, steps, warmSteps, threads,
                pretrained.Length > 0 ? pretrained : null);
        }
        foreach (var workload in args.Text("workloads", "mlp,bert").Split(',').Select(Workloads.Workloads.Named))
        {
            var checkpoint = WriteCheckpoint(workload);
            try
            {
                foreach (var allocator in args.Text("allocators", "glibc,mmap128k").Split(','))
                    foreach (var each in args.Text("modes", string.Join(',', AllModes)).Split(','))
                    {
                        if (!Allocators.TryGetValue(allocator, out var tunables))
                            throw new ArgumentException($"unknown allocator '{allocator}': use {string.Join(" or ", Allocators.Keys)}");
                        var environment = tunables.Length > 0 ? new Dictionary<string, string> { ["GLIBC_TUNABLES"] = tunables } : null;
                        foreach (var line in ChildProcess.Run(environment, "qlora-memory", "--workload", workload.Name, "--mode", each,
                                     "--steps", Invariant(steps), "--warm-steps", Invariant(warmSteps),
                                     "--threads", Invariant(threads), "--pretrained", checkpoint))
                            Console.WriteLine(line);
                    }
            }
            finally
            {
                Directory.Delete(checkpoint, recursive: true);
            }
        }
        return 0;
    }

    // The workload's weights (seed 0, as TrainingSession builds them) as a Hugging Face checkpoint in a new scratch folder.
    private static string WriteCheckpoint(Workload workload)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"loragen-qlora-memory-{workload.Name}-{Guid.NewGuid():N}");
        manual_seed(0);
        using var model = workload.CreateModel();
        model.SavePretrained(folder);
        return folder;
    }

    private static (TrainingMode Mode, QuantizationKind Quantize, bool Embeddings) Parse(string mode) => mode switch
    {
        "full" => (TrainingMode.Full, QuantizationKind.None, false),
        "lora" => (TrainingMode.Lora, QuantizationKind.None, false),
        "int8" => (TrainingMode.Lora, QuantizationKind.Int8, false),
        "nf4" => (TrainingMode.Lora, QuantizationKind.Nf4, false),
        "nf4-dq" => (TrainingMode.Lora, QuantizationKind.Nf4DoubleQuantized, false),
        "nf4-emb" => (TrainingMode.Lora, QuantizationKind.Nf4, true),
        _ => throw new ArgumentException($"unknown mode '{mode}': use one of {string.Join(", ", AllModes)}, nf4-emb"),
    };

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    // The name of the setting this process runs under, read from its environment (a child started by hand with other
    // tunables is "custom", so a line never claims a setting it did not run under).
    private static string AllocatorOfThisProcess()
    {
        var tunables = Environment.GetEnvironmentVariable("GLIBC_TUNABLES") ?? "";
        return Allocators.FirstOrDefault(entry => entry.Value == tunables).Key ?? "custom";
    }

    private static int Measure(Workload workload, string mode, int steps, int warmSteps, int threads, string? pretrained)
    {
        var allocator = AllocatorOfThisProcess();
        TorchThreads.Set(threads);
        var (training, quantize, embeddings) = Parse(mode);
        using (var warm = new TrainingSession(workload, training, quantize, embeddings, pretrained))
            for (var i = 0; i < warmSteps; i++)
                warm.Step();
        Rss.ReleaseFreeMemory();
        var baseline = Rss.CurrentBytes();
        var (baselineInUse, _) = Rss.MallocBytes();
        Rss.ResetPeak();

        using var session = new TrainingSession(workload, training, quantize, embeddings, pretrained);
        var buildPeak = Rss.PeakBytes();
        Rss.ReleaseFreeMemory();
        var built = Rss.CurrentBytes();
        Rss.ResetPeak();
        var times = new List<double>();
        for (var s = 0; s < steps; s++)
        {
            var watch = Stopwatch.StartNew();
            session.Step();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        var trainingPeak = Rss.PeakBytes();
        var (inUse, freeHeld) = Rss.MallocBytes();

        var prefix = $"{workload.Name}.qlora.{allocator}.{mode}";
        Report.Line($"{prefix}.frozen_weight_mb", FrozenBytes(session) / 1e6);
        Report.Line($"{prefix}.live_tensor_mb", TrainingMemory.Of(session).Total / 1e6);
        Report.Line($"{prefix}.baseline_rss_mb", baseline / 1e6);
        Report.Line($"{prefix}.build_peak_over_baseline_mb", (buildPeak - baseline) / 1e6);
        Report.Line($"{prefix}.built_over_baseline_mb", (built - baseline) / 1e6);
        Report.Line($"{prefix}.training_peak_over_baseline_mb", (trainingPeak - baseline) / 1e6);
        Report.Line($"{prefix}.malloc_in_use_over_baseline_mb", (inUse - baselineInUse) / 1e6);
        Report.Line($"{prefix}.malloc_free_held_mb", freeHeld / 1e6);
        Report.Line($"{prefix}.step_ms_median", times.Skip(2).Order().ElementAt((times.Count - 2) / 2));
        return 0;
    }

    // Bytes of what the step does not train: frozen parameters plus quantized layers' buffers (codes, scales, bias).
    private static long FrozenBytes(TrainingSession session)
    {
        var trained = session.Parameters.Select(p => p.Handle).ToHashSet();
        long frozenParameters = session.Model.parameters().Where(p => !trained.Contains(p.Handle))
            .Sum(p => p.numel() * p.element_size());
        long quantized = session.Model.modules().Where(m => m is QuantizedLinear or QuantizedEmbedding)
            .Sum(q => q.buffers().Sum(b => b.numel() * b.element_size()));
        return frozenParameters + quantized;
    }
}
