using FineTune;
using LoraGen;
using static TorchSharp.torch;

namespace LoraGen.Samples.Tests;

/// <summary>
/// Why the LoRA run keeps task A with its adapter on: trained on task B's input, the embedding adapter
/// moves the rows of B's characters only, so every input of task A goes through exactly the base weights.
/// </summary>
public sealed class EmbeddingAdapterTests
{
    [Fact]
    public void Training_on_task_B_leaves_task_A_outputs_bit_for_bit_and_moves_B_outputs()
    {
        manual_seed(5);
        using var model = new CharTransformer();
        using var inputsA = Inputs(ArithmeticTask.DigitSums);
        using var inputsB = Inputs(ArithmeticTask.LetterSums);
        model.eval();
        using var beforeA = model.forward(inputsA).detach();
        using var beforeB = model.forward(inputsB).detach();

        RankChoice.ApplyLora(model, ModelSize.Rank);
        Trainer.Train(model, model.LoraParameters(), ArithmeticTask.LetterSums,
            new TrainingSettings(Steps: 10, LearningRate: 3e-2, BatchSize: 32), new Random(6), CPU);

        using var afterA = model.forward(inputsA);
        using var afterB = model.forward(inputsB);
        Assert.Equal(0, (afterA - beforeA).abs().max().item<float>());
        Assert.True((afterB - beforeB).abs().max().item<float>() > 1e-2);

        // The mechanism: lora_embedding_A [r, 95] starts at zero; the columns of characters B never reads
        // get a zero gradient, so AdamW's moments stay zero and so does the update (TorchSharp's AdamW has
        // no weight decay by default; decoupled decay would keep a zero at zero too).
        var a = model.LoraParameters().Single(p => p.shape[1] == Vocabulary.Size);
        foreach (var c in ArithmeticTask.DigitSums.Script.Characters)
            Assert.Equal(0, a[.., Vocabulary.Id(c)].abs().max().item<float>());
        foreach (var c in ArithmeticTask.LetterSums.Script.Characters)
            Assert.True(a[.., Vocabulary.Id(c)].abs().max().item<float>() > 0, $"column of '{c}' did not move");
    }

    private static Tensor Inputs(ArithmeticTask task)
    {
        using var batch = task.Batch(64, new Random(4), CPU);
        return batch.narrow(1, 0, ArithmeticTask.InputLength).clone();
    }
}
