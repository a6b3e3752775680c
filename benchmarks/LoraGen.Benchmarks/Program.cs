using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using LoraGen;
using LoraGen.Benchmarks.Compare;

// `compare` and `memory` are the quick modes benchmarks/peer/compare.sh uses, `mixed` the mixed-batch cost; anything else goes to
// BenchmarkDotNet (`-- --filter '*'`, `-- --filter '*' --job short`, `-- --list flat`).
TorchNative.EnsureLoaded();
return args.FirstOrDefault() switch
{
    "compare" => CompareCommand.Run(new Arguments(args[1..])),
    "dora" => CompareCommand.RunDora(new Arguments(args[1..])),
    "memory" => MemoryCommand.Run(new Arguments(args[1..])),
    "checkpoint-memory" => CheckpointMemoryCommand.Run(new Arguments(args[1..])),
    "mixed" => MixedBatchCommand.Run(new Arguments(args[1..])),
    "qlora-memory" => QloraMemoryCommand.Run(new Arguments(args[1..])),
    "qlora-7b" => Qlora7bCommand.Run(new Arguments(args[1..])),
    _ => RunBenchmarkDotNet(args),
};

static int RunBenchmarkDotNet(string[] args)
{
    // In process: a generated child project would have to rebuild LoraGen and redo the libtorch fix
    // (build/LoraGen.targets) for every run; the benchmarks here measure native work, not JIT tiers.
    var config = DefaultConfig.Instance.AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).AsDefault());
    var summaries = BenchmarkSwitcher.FromAssembly(typeof(CompareCommand).Assembly).Run(args, config);
    return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
}
