using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

/// <summary>An MLP block with adapter dropout (so resuming depends on the random generator) and a Trainable norm.</summary>
[LoraTarget(Rank = 4, Alpha = 8, Dropout = 0.25, Trainable = ["norm"])]
public sealed partial class DropoutBlock : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> up = nn.Linear(16, 32);
    private nn.Module<Tensor, Tensor> down = nn.Linear(32, 16);
    private readonly nn.Module<Tensor, Tensor> norm = nn.LayerNorm(16);

    public DropoutBlock() : base(nameof(DropoutBlock)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return (x + down.call(nn.functional.gelu(up.call(norm.call(x))))).MoveToOuterDisposeScope();
    }
}

/// <summary>Two dropout blocks and a frozen head whose BatchNorm updates its running statistics while training.</summary>
public sealed class DropoutNet : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> blocks = nn.Sequential(new DropoutBlock(), new DropoutBlock());
    private readonly nn.Module<Tensor, Tensor> head = nn.Sequential(nn.BatchNorm1d(16), nn.Linear(16, 3));

    public DropoutNet() : base(nameof(DropoutNet)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var hidden = blocks.call(x);
        return head.call(hidden);
    }
}

/// <summary>These tests draw from TorchSharp's one global CPU generator and compare runs bit for bit, so nothing
/// else may draw from it meanwhile: the collection runs alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(GlobalGeneratorCollection), DisableParallelization = true)]
public sealed class GlobalGeneratorCollection;

[Collection(nameof(GlobalGeneratorCollection))]
public sealed class TrainingStateTests
{
    private const int Seed = 77;
    private const int StopAt = 6;
    private const int Steps = 12;

    private static (DropoutNet Model, optim.Optimizer Optimizer) NewRun(string optimizer)
    {
        torch.manual_seed(Seed); // the frozen base weights come from here, as a pretrained model's come from its file
        var model = new DropoutNet();
        model.ApplyLora();
        model.train();
        var parameters = model.LoraParameters();
        optim.Optimizer made = optimizer switch
        {
            "AdamW" => optim.AdamW(parameters, lr: 1e-2, weight_decay: 0.05),
            "Adam" => optim.Adam(parameters, lr: 1e-2, amsgrad: true),
            "SGD" => optim.SGD(parameters, 0.05, momentum: 0.9, nesterov: true),
            _ => throw new ArgumentException(optimizer),
        };
        return (model, made);
    }

    /// <summary>Steps <paramref name="from"/>+1 … <paramref name="to"/>: a random batch, dropout, a step, and a
    /// learning rate that decays every step (as a scheduler would), so that lr must be restored too.</summary>
    private static void Train(DropoutNet model, optim.Optimizer optimizer, int from, int to)
    {
        for (int step = from + 1; step <= to; step++)
        {
            using var scope = NewDisposeScope();
            var x = randn(8, 16);
            var labels = randint(0, 3, [8]);
            optimizer.zero_grad();
            nn.functional.cross_entropy(model.forward(x), labels).backward();
            optimizer.step();
            foreach (var group in optimizer.ParamGroups)
                group.LearningRate *= 0.9;
        }
    }

    /// <summary>What training changes: the trainable parameters, and the buffers (BatchNorm's running statistics).</summary>
    private static List<(string Path, Tensor Value)> TrainedValues(nn.Module model) =>
        model.NamedLoraParameters().Select(p => (p.Path, p.Parameter.detach().clone()))
            .Concat(model.named_buffers().Select(b => (b.name, b.buffer.clone()))).ToList();

    private static bool SameTrainedValues(List<(string Path, Tensor Value)> expected, nn.Module model)
    {
        var actual = TrainedValues(model);
        Assert.Equal(expected.Select(e => e.Path), actual.Select(a => a.Path));
        return expected.Zip(actual).All(pair => pair.First.Value.Equals(pair.Second.Value) && Closeness.BitIdentical(pair.Second.Value, pair.First.Value));
    }

    private static string NewStatePath() => Path.Combine(ScratchDirectories.New(), "training_state.safetensors");

    [Theory]
    [InlineData("AdamW")]
    [InlineData("Adam")]
    [InlineData("SGD")]
    public void Resuming_from_a_saved_state_is_bit_identical_to_the_run_that_never_stopped(string kind)
    {
        var (uninterrupted, uninterruptedOptimizer) = NewRun(kind);
        Train(uninterrupted, uninterruptedOptimizer, 0, Steps);
        var expected = TrainedValues(uninterrupted);

        var (stopped, stoppedOptimizer) = NewRun(kind);
        Train(stopped, stoppedOptimizer, 0, StopAt);
        var path = NewStatePath();
        stopped.SaveTrainingState(path, stoppedOptimizer, StopAt, new Dictionary<string, string> { ["epoch"] = "2" });
        Assert.False(SameTrainedValues(expected, stopped), "the run stopped halfway already has the final weights");
        using (no_grad())
        {
            using var x = randn(4, 16);
            using var first = stopped.forward(x);
            using var second = stopped.forward(x);
            Assert.False(first.Equals(second), "adapter dropout is not active, so the generator matters less than the test intends");
        }

        // A new process: the model built and adapted the same way, a fresh optimizer, then the state.
        var (resumed, resumedOptimizer) = NewRun(kind);
        var state = resumed.LoadTrainingState(path, resumedOptimizer);
        Assert.Equal(StopAt, state.Step);
        Assert.Equal(new Dictionary<string, string> { ["epoch"] = "2" }, state.Metadata);
        Assert.Equal(stoppedOptimizer.ParamGroups.Single().LearningRate, resumedOptimizer.ParamGroups.Single().LearningRate); // decayed, not the initial
        Assert.All(resumed.LoraParameters(), p =>
        {
            using var grad = p.grad; // the stopped run's parameters had gradients: they are back, zeroed
            Assert.NotNull(grad);
            Assert.Equal(0, grad!.count_nonzero().item<long>());
        });
        Train(resumed, resumedOptimizer, StopAt, Steps);
        Assert.True(SameTrainedValues(expected, resumed), "the resumed run's weights or buffers differ from the uninterrupted run's");

        // Control: the same resume with the generator moved on by one draw ends elsewhere, so dropout and the
        // batches depend on the generator and the check above can tell a restored generator from a lost one.
        var (perturbed, perturbedOptimizer) = NewRun(kind);
        perturbed.LoadTrainingState(path, perturbedOptimizer);
        randn(1).Dispose();
        Train(perturbed, perturbedOptimizer, StopAt, Steps);
        Assert.False(SameTrainedValues(expected, perturbed), "the generator does not matter in this setup, so the test proves nothing");
    }

    [Fact]
    public void A_LambdaLR_schedule_continues_where_it_stopped_when_written_in_terms_of_the_absolute_step()
    {
        static double Schedule(int step) => step < 4 ? (step + 1) / 4.0 : Math.Pow(0.8, step - 4); // warm-up, then decay
        var (model, optimizer) = NewRun("AdamW");
        var scheduler = optim.lr_scheduler.LambdaLR(optimizer, Schedule);
        var path = NewStatePath();
        var expected = new List<double>();
        for (int step = 1; step <= Steps; step++)
        {
            expected.Add(optimizer.ParamGroups.Single().LearningRate); // the lr step `step` runs with
            scheduler.step();
            if (step == StopAt)
                model.SaveTrainingState(path, optimizer, step);
        }

        var (resumed, resumedOptimizer) = NewRun("AdamW");
        long resumedAt = resumed.LoadTrainingState(path, resumedOptimizer).Step;
        var resumedScheduler = optim.lr_scheduler.LambdaLR(resumedOptimizer, epoch => Schedule(epoch + (int)resumedAt));
        var actual = new List<double>();
        for (long step = resumedAt + 1; step <= Steps; step++)
        {
            actual.Add(resumedOptimizer.ParamGroups.Single().LearningRate);
            resumedScheduler.step();
        }
        Assert.Equal(expected.Skip(StopAt), actual);
    }

    [Fact]
    public void The_file_holds_the_documented_keys_and_metadata()
    {
        var (model, optimizer) = NewRun("SGD"); // before its first step SGD has no momentum buffers yet
        var path = NewStatePath();
        model.SaveTrainingState(path, optimizer, 0, new Dictionary<string, string> { ["data.position"] = "0" });

        using var file = SafetensorsReader.Open(path);
        var keys = file.Tensors.Select(t => t.Name).ToHashSet();
        string a = "blocks.0.up.lora_A.default.weight";
        Assert.Contains("model." + a, keys);
        Assert.Contains("model.blocks.1.norm.bias", keys);                  // a Trainable field
        Assert.DoesNotContain("model.blocks.0.up.base_layer.weight", keys); // frozen: not saved
        Assert.DoesNotContain("model.head.1.weight", keys);
        Assert.Contains("model.head.0.running_mean", keys);                 // buffers change while training
        Assert.Equal(SafetensorsDType.I64, file.Find("model.head.0.num_batches_tracked")!.DType);
        Assert.Contains("optimizer.param_groups.0.lr", keys);
        Assert.Contains("optimizer.param_groups.0.initial_lr", keys);
        Assert.Contains("optimizer.param_groups.0.momentum", keys);
        Assert.Contains("optimizer.param_groups.0.nesterov", keys);
        Assert.Equal(SafetensorsDType.F64, file.Find("optimizer.param_groups.0.lr")!.DType);
        Assert.Equal(0.05, BitConverter.ToDouble(file.ReadBytes("optimizer.param_groups.0.lr")));
        Assert.Equal(new byte[] { 1 }, file.ReadBytes("optimizer.param_groups.0.nesterov"));
        var rng = file.Find("rng.cpu")!;
        Assert.Equal(SafetensorsDType.U8, rng.DType);
        Assert.Equal(new long[] { 5056 }, rng.Shape);

        Assert.Equal("1", file.Metadata["loragen.training_state"]);
        Assert.Equal("0", file.Metadata["loragen.step"]);
        Assert.Equal("TorchSharp.Modules.SGD", file.Metadata["loragen.optimizer"]);
        Assert.Equal("0", file.Metadata["user.data.position"]);
        Assert.Equal("[]", file.Metadata["loragen.grads"]);
        int count = model.LoraParameters().Count;
        Assert.Equal(count, System.Text.Json.JsonSerializer.Deserialize<List<List<string>>>(file.Metadata["loragen.param_groups"])!.Single().Count);
        var none = System.Text.Json.JsonSerializer.Deserialize<List<string>>(file.Metadata["loragen.none"])!;
        Assert.Contains($"optimizer.state.{a}.momentum_buffer", none);
        Assert.Equal(count, none.Count);

        // After a step: AdamW's state, with the moments shaped like their parameter, and every gradient listed.
        var (trained, adamW) = NewRun("AdamW");
        Train(trained, adamW, 0, 1);
        trained.SaveTrainingState(path, adamW, 1);
        using var after = SafetensorsReader.Open(path);
        Assert.Equal(new long[] { 4, 16 }, after.Find($"optimizer.state.{a}.exp_avg")!.Shape);
        Assert.Equal(SafetensorsDType.I64, after.Find($"optimizer.state.{a}.step")!.DType);
        Assert.Equal(1L, BitConverter.ToInt64(after.ReadBytes($"optimizer.state.{a}.step")));
        Assert.Contains($"optimizer.state.{a}.max_exp_avg_sq", System.Text.Json.JsonSerializer.Deserialize<List<string>>(after.Metadata["loragen.none"])!);
        Assert.Equal(count, System.Text.Json.JsonSerializer.Deserialize<List<string>>(after.Metadata["loragen.grads"])!.Count);
    }

    [Fact]
    public void A_state_saved_before_the_first_step_resets_a_trained_optimizer_and_its_gradients()
    {
        var (model, optimizer) = NewRun("SGD");
        var path = NewStatePath();
        var weights = TrainedValues(model);
        var optimizerBefore = OptimizerBytes(optimizer);
        var rngBefore = CpuGeneratorState.Capture();
        model.SaveTrainingState(path, optimizer, 0);

        Train(model, optimizer, 0, 3); // momentum buffers and gradients now exist, weights and lr moved
        Assert.NotEqual(optimizerBefore, OptimizerBytes(optimizer));

        model.LoadTrainingState(path, optimizer);
        Assert.True(SameTrainedValues(weights, model));
        Assert.Equal(optimizerBefore, OptimizerBytes(optimizer)); // momentum_buffer back to none, lr back
        Assert.All(model.LoraParameters(), p => Assert.Null(p.grad));
        Assert.Equal(rngBefore, CpuGeneratorState.Capture());
    }

    // ---- refusals: nothing changes ----------------------------------------------------------------

    /// <summary>Everything a load could change: trainable values and gradients, the optimizer as TorchSharp saves
    /// it (options and state), and the generator.</summary>
    private sealed record Snapshot(List<(string Name, bool RequiresGrad, byte[] Bytes)> Model, List<bool> Grads, byte[] Optimizer, byte[] Rng)
    {
        public static Snapshot Of(nn.Module model, optim.Optimizer optimizer) => new(
            ModelState.Snapshot(model),
            model.LoraParameters().Select(p => { using var g = p.grad; return g is not null; }).ToList(),
            OptimizerBytes(optimizer),
            CpuGeneratorState.Capture());

        public void AssertUnchanged(nn.Module model, optim.Optimizer optimizer)
        {
            var now = Of(model, optimizer);
            ModelState.AssertSame(Model, model);
            Assert.Equal(Grads, now.Grads);
            Assert.True(Optimizer.AsSpan().SequenceEqual(now.Optimizer), "the optimizer changed");
            Assert.True(Rng.AsSpan().SequenceEqual(now.Rng), "the generator changed");
        }
    }

    private static byte[] OptimizerBytes(optim.Optimizer optimizer)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            ((OptimizerHelper)optimizer).save_state_dict(writer);
        return stream.ToArray();
    }

    /// <summary>A saved AdamW state at step 3, and a second run at step 2 to load it into.</summary>
    private (string Path, DropoutNet Model, optim.Optimizer Optimizer) SavedAndAnotherRun(string loadInto = "AdamW")
    {
        var (model, optimizer) = NewRun("AdamW");
        Train(model, optimizer, 0, 3);
        var path = NewStatePath();
        model.SaveTrainingState(path, optimizer, 3);
        var (other, otherOptimizer) = NewRun(loadInto);
        Train(other, otherOptimizer, 0, 2);
        return (path, other, otherOptimizer);
    }

    [Fact]
    public void Another_optimizer_type_is_refused_and_nothing_changes()
    {
        var (path, model, optimizer) = SavedAndAnotherRun(loadInto: "Adam");
        var before = Snapshot.Of(model, optimizer);
        var error = Assert.Throws<LoraFileException>(() => model.LoadTrainingState(path, optimizer));
        Assert.Contains("was saved with a TorchSharp.Modules.AdamW optimizer, but the optimizer given is a TorchSharp.Modules.Adam; nothing was changed", error.Message);
        before.AssertUnchanged(model, optimizer);
    }

    [Fact]
    public void An_optimizer_over_other_parameters_is_refused_and_nothing_changes()
    {
        var (path, model, _) = SavedAndAnotherRun();
        var lessOne = optim.AdamW(model.LoraParameters().Skip(1).ToList());
        var before = Snapshot.Of(model, lessOne);
        var error = Assert.Throws<LoraFileException>(() => model.LoadTrainingState(path, lessOne));
        Assert.Contains("saved with an optimizer over other parameters; nothing was changed", error.Message);
        Assert.Contains("param group 0: in the file only (1): blocks.0.up.lora_A.default.weight; in the optimizer only (0): none", error.Message);
        before.AssertUnchanged(model, lessOne);

        var reversed = optim.AdamW(model.LoraParameters().AsEnumerable().Reverse().ToList());
        error = Assert.Throws<LoraFileException>(() => model.LoadTrainingState(path, reversed));
        Assert.Contains("param group 0 holds the same parameters in another order", error.Message);
    }

    [Fact]
    public void A_model_adapted_with_another_rank_is_refused_and_nothing_changes()
    {
        var (path, _, _) = SavedAndAnotherRun();
        torch.manual_seed(Seed);
        var model = new DropoutNet();
        model.ApplyLora(new LoraOptions { Reconfigure = (_, config) => config with { Rank = 2 } });
        var optimizer = optim.AdamW(model.LoraParameters());
        Train(model, optimizer, 0, 1);
        var before = Snapshot.Of(model, optimizer);
        var error = Assert.Throws<LoraFileException>(() => model.LoadTrainingState(path, optimizer));
        Assert.Contains("does not fit this model and optimizer; nothing was changed", error.Message);
        Assert.Contains("model.blocks.0.up.lora_A.default.weight: F32 [4, 16] in the file, F32 [2, 16] expected", error.Message);
        Assert.Contains("optimizer.state.blocks.0.up.lora_A.default.weight.exp_avg: F32 [4, 16] in the file, F32 [2, 16] expected", error.Message);
        before.AssertUnchanged(model, optimizer);
    }

    [Fact]
    public void A_truncated_altered_or_foreign_file_is_refused_and_nothing_changes()
    {
        var (path, model, optimizer) = SavedAndAnotherRun();
        var before = Snapshot.Of(model, optimizer);
        var bytes = File.ReadAllBytes(path);

        File.WriteAllBytes(path, bytes[..^100]);
        Assert.Throws<SafetensorsFormatException>(() => model.LoadTrainingState(path, optimizer));

        var flipped = (byte[])bytes.Clone();
        flipped[^7000] ^= 0x10; // inside the data section (the generator state alone is 5,056 bytes)
        File.WriteAllBytes(path, flipped);
        var damaged = Assert.Throws<LoraFileException>(() => model.LoadTrainingState(path, optimizer));
        Assert.Contains("is damaged", damaged.Message);

        var headerEdit = System.Text.Encoding.ASCII.GetBytes("\"loragen.step\":\"3\"");
        int at = bytes.AsSpan().IndexOf(headerEdit);
        Assert.True(at > 0);
        var edited = (byte[])bytes.Clone();
        edited[at + headerEdit.Length - 2] = (byte)'9'; // step 3 → 9, still valid JSON and safetensors
        File.WriteAllBytes(path, edited);
        Assert.Contains("is damaged", Assert.Throws<LoraFileException>(() => model.LoadTrainingState(path, optimizer)).Message);

        var adapterDirectory = ScratchDirectories.New();
        model.SaveAdapter(adapterDirectory);
        var foreign = Assert.Throws<LoraFileException>(() =>
            model.LoadTrainingState(Path.Combine(adapterDirectory, AdapterFileExtensions.WeightsFileName), optimizer));
        Assert.Contains("is not a training state", foreign.Message);

        before.AssertUnchanged(model, optimizer);
        File.WriteAllBytes(path, bytes);
        model.LoadTrainingState(path, optimizer); // the intact file loads
    }

    [Fact]
    public void An_invalid_generator_state_is_refused_before_it_reaches_LibTorch()
    {
        // LibTorch would end the process on this state (TorchSharp does not catch its C++ exception); the file's
        // checksum is recomputed so that only the generator check stands between the state and LibTorch.
        var (path, model, optimizer) = SavedAndAnotherRun();
        Assert.Null(CpuGeneratorState.Problem(CpuGeneratorState.Capture()));
        RewriteWithValidChecksum(path, "rng.cpu", state => BitConverter.GetBytes(0).CopyTo(state, 12)); // seeded = 0
        var before = Snapshot.Of(model, optimizer);
        var error = Assert.Throws<LoraFileException>(() => model.LoadTrainingState(path, optimizer));
        Assert.Contains("rng.cpu: the CPU generator state is not a valid Mersenne Twister (seeded 0", error.Message);
        before.AssertUnchanged(model, optimizer);
    }

    private static void RewriteWithValidChecksum(string path, string key, Action<byte[]> change)
    {
        Dictionary<string, string> metadata;
        List<SafetensorsTensor> tensors;
        using (var reader = SafetensorsReader.Open(path))
        {
            metadata = reader.Metadata.ToDictionary();
            tensors = reader.Tensors.Select(info =>
            {
                var data = reader.ReadBytes(info);
                if (info.Name == key)
                    change(data);
                return new SafetensorsTensor(info.Name, info.DType, info.Shape, () => data);
            }).ToList();
        }
        metadata[TrainingStateFile.ChecksumKey] = TrainingStateFile.Checksum(metadata, tensors.Select(t => (t.Name, t.DType, t.Shape, t.Data())));
        SafetensorsWriter.WriteFile(path, tensors, metadata);
    }

    // ---- saving ------------------------------------------------------------------------------------

    [Fact]
    public void Saving_with_an_optimizer_the_state_cannot_describe_is_refused_before_writing()
    {
        var (model, _) = NewRun("AdamW");
        var path = NewStatePath();
        var foreign = nn.Parameter(zeros(3, 3));
        var error = Assert.Throws<ArgumentException>(() => model.SaveTrainingState(path, optim.AdamW(model.LoraParameters().Append(foreign).ToList()), 0));
        Assert.Contains("holds a Float32 tensor of shape [3, 3] that is not a parameter of this model", error.Message);
        var twice = optim.AdamW(model.LoraParameters().Append(model.LoraParameters()[0]).ToList());
        Assert.Contains("holds 'blocks.0.up.lora_A.default.weight' twice", Assert.Throws<ArgumentException>(() => model.SaveTrainingState(path, twice, 0)).Message);
        Assert.Throws<NotSupportedException>(() => model.SaveTrainingState(path, optim.LBFGS(model.LoraParameters()), 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.SaveTrainingState(path, optim.AdamW(model.LoraParameters()), -1));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void A_save_that_fails_halfway_leaves_the_previous_state_loadable()
    {
        var (model, optimizer) = NewRun("AdamW");
        Train(model, optimizer, 0, 2);
        var path = NewStatePath();
        model.SaveTrainingState(path, optimizer, 2);
        var saved = File.ReadAllBytes(path);
        var weights = TrainedValues(model);

        Train(model, optimizer, 2, 4);
        using (AtomicFile.WrapStreamsForTest(stream => new FailingStream(stream, failAfterBytes: 3000)))
            Assert.Throws<IOException>(() => model.SaveTrainingState(path, optimizer, 4));

        Assert.Equal(new[] { "training_state.safetensors" }, Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
        Assert.Equal(saved, File.ReadAllBytes(path));
        Assert.Equal(2, model.LoadTrainingState(path, optimizer).Step);
        Assert.True(SameTrainedValues(weights, model));
    }
}
