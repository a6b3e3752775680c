using static TorchSharp.torch;

namespace FineTune;

/// <summary>How well a model does a task: greedy decoding of the whole answer, counted right only when
/// every answer digit is.</summary>
public static class Evaluation
{
    /// <summary>The share of <paramref name="examples"/> (token ids, prompt and answer) answered exactly.</summary>
    public static double Accuracy(CharTransformer model, Tensor examples)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        var text = examples.narrow(1, 0, ArithmeticTask.PromptLength);
        for (int i = 0; i < ArithmeticTask.AnswerLength; i++)
        {
            var next = model.forward(text).select(1, -1).argmax(-1, keepdim: true);
            text = cat([text, next], 1);
        }
        var answer = text.narrow(1, ArithmeticTask.PromptLength, ArithmeticTask.AnswerLength);
        var expected = examples.narrow(1, ArithmeticTask.PromptLength, ArithmeticTask.AnswerLength);
        return answer.eq(expected).all(1).to(ScalarType.Float32).mean().item<float>();
    }

    /// <summary>Teacher-forced logits over the answer positions, for comparing two models' outputs.</summary>
    public static Tensor AnswerLogits(CharTransformer model, Tensor examples)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        var logits = model.forward(examples.narrow(1, 0, ArithmeticTask.SequenceLength - 1));
        return logits.narrow(1, ArithmeticTask.PromptLength - 1, ArithmeticTask.AnswerLength).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Cross-entropy of the answer digits given everything before them (the training loss).</summary>
    public static Tensor AnswerLoss(CharTransformer model, Tensor batch)
    {
        var logits = model.forward(batch.narrow(1, 0, ArithmeticTask.SequenceLength - 1))
            .narrow(1, ArithmeticTask.PromptLength - 1, ArithmeticTask.AnswerLength);
        var targets = batch.narrow(1, ArithmeticTask.PromptLength, ArithmeticTask.AnswerLength);
        return nn.functional.cross_entropy(logits.reshape(-1, Vocabulary.Size), targets.reshape(-1));
    }
}
