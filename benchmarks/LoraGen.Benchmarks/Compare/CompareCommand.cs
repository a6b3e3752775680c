using System.Diagnostics;
using LoraGen.Benchmarks.Generator;
using LoraGen.Benchmarks.Suites;
using LoraGen.Benchmarks.Workloads;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary>
/// <c>compare --threads 1 [--iterations 30] [--warmup 5] [--workloads mlp,transformer]</c>: the quick timing
/// mode benchmarks/peer/compare.sh runs beside benchmarks/peer/peer.py. Medians of interleaved single
/// calls, printed as <c>key value</c> lines with the same keys as the peer's.
/// </summary>
public static class CompareCommand
{
    public static int Run(Arguments args)
    {
        var threads = args.Number("threads", 1);
        var iterations = args.Number("iterations", 30);
        var warmup = args.Number("warmup", 5);
        TorchThreads.Set(threads);
        Report.Line("harness", "loragen");
        Report.Line("threads", get_num_threads());
        TimeMatrixProduct(warmup, iterations);

        foreach (var name in args.Text("workloads", "mlp,transformer").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var workload = Workloads.Workloads.Named(name);
            TimeTraining(workload, warmup, iterations);
            TimeInference(workload, warmup, iterations);
            foreach (var mode in new[] { TrainingMode.Lora, TrainingMode.Full })
                foreach (var line in MemoryCommand.RunChild(name, mode, threads))
                    Console.WriteLine(line);
        }
        TimeGenerator(warmup, iterations);
        return 0;
    }

    /// <summary><c>dora --threads 1 [--iterations 30] [--warmup 5] [--workloads mlp,transformer]</c>: a DoRA
    /// training step against a LoRA step (same targets, ranks, alphas), interleaved medians and their ratio.</summary>
    public static int RunDora(Arguments args)
    {
        var threads = args.Number("threads", 1);
        var iterations = args.Number("iterations", 30);
        var warmup = args.Number("warmup", 5);
        TorchThreads.Set(threads);
        Report.Line("threads", get_num_threads());
        foreach (var name in args.Text("workloads", "mlp,transformer").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var workload = Workloads.Workloads.Named(name);
            using var lora = new TrainingSession(workload, TrainingMode.Lora);
            using var dora = new TrainingSession(workload, TrainingMode.Dora);
            var medians = Stopwatches.InterleavedMedians([() => lora.Step(), () => dora.Step()], warmup, iterations);
            Report.Line($"{workload.Name}.step.lora_ms", medians[0]);
            Report.Line($"{workload.Name}.step.dora_ms", medians[1]);
            Report.Line($"{workload.Name}.step.dora_over_lora", medians[1] / medians[0]);
            foreach (var (session, label) in new[] { (lora, "lora"), (dora, "dora") })
            {
                var parts = Enumerable.Range(0, iterations).Select(_ => session.ProfiledStep()).ToList();
                Report.Line($"{workload.Name}.step.{label}_forward_ms", Stopwatches.Median([.. parts.Select(p => p.ForwardMs)]));
                Report.Line($"{workload.Name}.step.{label}_backward_ms", Stopwatches.Median([.. parts.Select(p => p.BackwardMs)]));
                Report.Line($"{workload.Name}.step.{label}_optimizer_ms", Stopwatches.Median([.. parts.Select(p => p.OptimizerMs)]));
            }
        }
        return 0;
    }

    private static void TimeTraining(Workload workload, int warmup, int iterations)
    {
        using var lora = new TrainingSession(workload, TrainingMode.Lora);
        using var full = new TrainingSession(workload, TrainingMode.Full);
        var medians = Stopwatches.InterleavedMedians([() => lora.Step(), () => full.Step()], warmup, iterations);
        Report.Line($"{workload.Name}.step.lora_ms", medians[0]);
        Report.Line($"{workload.Name}.step.full_ms", medians[1]);

        // Where a LoRA step's time goes, for docs/performance.md.
        var parts = Enumerable.Range(0, iterations).Select(_ => lora.ProfiledStep()).ToList();
        Report.Line($"{workload.Name}.step.lora_forward_ms", Stopwatches.Median([.. parts.Select(p => p.ForwardMs)]));
        Report.Line($"{workload.Name}.step.lora_backward_ms", Stopwatches.Median([.. parts.Select(p => p.BackwardMs)]));
        Report.Line($"{workload.Name}.step.lora_optimizer_ms", Stopwatches.Median([.. parts.Select(p => p.OptimizerMs)]));
    }

    // The one product a workload (a) layer computes, [64, 1024]·[1024, 1024]: how fast the BLAS under
    // each harness is, apart from anything LoRA or autograd does.
    private static void TimeMatrixProduct(int warmup, int iterations)
    {
        using var x = randn(64, 1024);
        using var w = randn(1024, 1024);
        var medians = Stopwatches.InterleavedMedians([() => x.mm(w).Dispose()], warmup, iterations);
        Report.Line("blas.mm_64x1024x1024_ms", medians[0]);
    }

    private static void TimeInference(Workload workload, int warmup, int iterations)
    {
        using var plain = new InferenceSession(workload, InferenceMode.Base);
        using var unmerged = new InferenceSession(workload, InferenceMode.Unmerged);
        using var merged = new InferenceSession(workload, InferenceMode.Merged);
        var medians = Stopwatches.InterleavedMedians([plain.Forward, unmerged.Forward, merged.Forward], warmup, iterations);
        Report.Line($"{workload.Name}.inference.base_ms", medians[0]);
        Report.Line($"{workload.Name}.inference.unmerged_ms", medians[1]);
        Report.Line($"{workload.Name}.inference.merged_ms", medians[2]);
    }

    private static void TimeGenerator(int warmup, int iterations)
    {
        var compilation = SyntheticProject.Create();
        var edited = SyntheticProject.EditMethodBody(compilation);
        var warm = SyntheticProject.CreateDriver().RunGenerators(compilation);
        var ran = SyntheticProject.StepsThatRan(warm.RunGenerators(edited));
        var medians = Stopwatches.InterleavedMedians(
            [
                () => SyntheticProject.CreateDriver().RunGenerators(compilation.Clone()),
                () => warm.RunGenerators(edited.Clone()),
                // The same compilation every time: its binding is cached, so this is the generator's own work.
                () => SyntheticProject.CreateDriver().RunGenerators(compilation),
            ],
            warmup, iterations);
        Report.Line("generator.classes", SyntheticProject.ClassCount);
        Report.Line("generator.first_run_ms", medians[0]);
        Report.Line("generator.edit_run_ms", medians[1]);
        Report.Line("generator.first_run_bound_compilation_ms", medians[2]);
        Report.Line("generator.edit_steps_rerun", ran.Count);
    }
}
