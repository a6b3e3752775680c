using static TorchSharp.torch;

namespace FineTune;

/// <summary>
/// How well a model does a task. An example row (<see cref="ArithmeticTask.Batch"/>) is the model's input
/// followed by the expected answer; the model answers in one pass, in the input's last
/// <see cref="ArithmeticTask.AnswerLength"/> positions, and counts as right only when every answer digit is.
/// </summary>
public static class Evaluation
{
    /// <summary>The share of <paramref name="examples"/> answered exactly.</summary>
    public static double Accuracy(CharTransformer model, Tensor examples)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        var answer = AnswerSlotLogits(model, examples).argmax(-1);
        return answer.eq(Answers(examples)).all(1).to(ScalarType.Float32).mean().item<float>();
    }

    /// <summary>The share of <paramref name="examples"/> that answer-slot <paramref name="logits"/> (from
    /// <see cref="AnswerLogits"/>) answer exactly.</summary>
    public static double Accuracy(Tensor logits, Tensor examples)
    {
        using var scope = NewDisposeScope();
        return logits.argmax(-1).eq(Answers(examples).cpu()).all(1).to(ScalarType.Float32).mean().item<float>();
    }

    /// <summary>The logits of the answer slots, on the CPU, for comparing two models' outputs.</summary>
    public static Tensor AnswerLogits(CharTransformer model, Tensor examples)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        return AnswerSlotLogits(model, examples).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Cross-entropy of the answer digits (the training loss).</summary>
    public static Tensor AnswerLoss(CharTransformer model, Tensor batch) =>
        nn.functional.cross_entropy(
            AnswerSlotLogits(model, batch).reshape(-1, Vocabulary.Size), Answers(batch).reshape(-1));

    private static Tensor AnswerSlotLogits(CharTransformer model, Tensor examples) =>
        model.forward(examples.narrow(1, 0, ArithmeticTask.InputLength))
            .narrow(1, ArithmeticTask.PromptLength, ArithmeticTask.AnswerLength);

    private static Tensor Answers(Tensor examples) =>
        examples.narrow(1, ArithmeticTask.InputLength, ArithmeticTask.AnswerLength);
}
