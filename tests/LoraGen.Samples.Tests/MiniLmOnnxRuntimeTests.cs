using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;
using SpamFilter.Import;
using static TorchSharp.torch;

namespace LoraGen.Samples.Tests;

/// <summary>
/// The imported model computes what the ONNX file computes: mean-pooled sentence embeddings of the C# BERT, loaded
/// through LoadPretrained from the imported checkpoint, against ONNX Runtime running the package's own ONNX file on
/// the same token ids. The pooler output (the file's second output, tanh of a Gemm) is compared too: the classifier
/// reads it.
/// </summary>
[Collection(MiniLmCollection.Name)]
public sealed class MiniLmOnnxRuntimeTests(MiniLmFixture minilm, ITestOutputHelper output)
{
    // Different lengths, so the batch is padded and the attention mask matters (a masked key must get no weight).
    private static readonly string[] Sentences =
    [
        "free money now",
        "the meeting is moved to tuesday afternoon , please bring the report",
        "hello",
        "you have won a prize",
    ];

    [Fact]
    public void Mean_pooled_embeddings_and_pooler_output_equal_onnx_runtime_within_1e_5()
    {
        var rows = Sentences.Select(minilm.Ids).ToArray();
        int batch = rows.Length, length = rows.Max(r => r.Length);
        var ids = new long[batch * length];
        var mask = new long[batch * length];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < rows[b].Length; t++)
                (ids[b * length + t], mask[b * length + t]) = (rows[b][t], 1); // padding: id 0 ([PAD]), mask 0

        var (expected, expectedPooler) = RunOnnxRuntime(ids, mask, batch, length);

        using var model = MiniLmCheckpoint.LoadClassifier(minilm.CacheDirectory);
        model.eval();
        using var noGrad = no_grad();
        using var idsTensor = tensor(ids, [batch, length]);
        using var maskTensor = tensor(mask, [batch, length]);
        using var embeddings = model.SentenceEmbeddings(idsTensor, maskTensor);
        using var hidden = model.Bert.forward(idsTensor, maskTensor);
        using var pooler = model.Bert.Pool(hidden);

        Assert.Equal(new long[] { batch, 384 }, embeddings.shape);
        double maxDelta = MaxDelta("mean-pooled embeddings", expected, embeddings.data<float>().ToArray());
        double poolerDelta = MaxDelta("pooler output", expectedPooler, pooler.data<float>().ToArray());
        output.WriteLine($"({batch} sentences of {string.Join(", ", rows.Select(r => r.Length))} tokens, padded to {length})");
        Assert.True(maxDelta <= 1e-5, $"mean-pooled embeddings: max |Δ| = {maxDelta:E2} > 1e-5");
        Assert.True(poolerDelta <= 1e-5, $"pooler output: max |Δ| = {poolerDelta:E2} > 1e-5");
    }

    private double MaxDelta(string what, float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxDelta = expected.Zip(actual, (e, a) => Math.Abs((double)e - a)).Max();
        double maxValue = expected.Max(e => Math.Abs((double)e));
        output.WriteLine($"{what}: max |Δ| vs ONNX Runtime {maxDelta:E2}, largest |value| {maxValue:F3}");
        Assert.True(maxValue > 0.1, $"the reference {what} are degenerate");
        return maxDelta;
    }

    // ONNX Runtime's last_hidden_state, mean-pooled over the mask as sentence-transformers does (in double, so the
    // reference adds no error of its own), and its pooler output.
    private (float[] MeanPooled, float[] Pooler) RunOnnxRuntime(long[] ids, long[] mask, int batch, int length)
    {
        using var session = new InferenceSession(minilm.Onnx);
        long[] shape = [batch, length];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], shape);
        using var runOptions = new RunOptions();
        var inputs = new Dictionary<string, OrtValue>
        {
            ["input_ids"] = idsValue,
            ["attention_mask"] = maskValue,
            ["token_type_ids"] = typesValue,
        };
        using var results = session.Run(runOptions, inputs, [.. session.OutputNames]); // last_hidden_state, then the pooler's
        Assert.Equal("last_hidden_state", session.OutputNames[0]);
        var hidden = results[0].GetTensorDataAsSpan<float>();
        int width = hidden.Length / (batch * length);
        var pooled = new float[batch * width];
        for (int b = 0; b < batch; b++)
        {
            double count = 0;
            var sum = new double[width];
            for (int t = 0; t < length; t++)
            {
                if (mask[b * length + t] == 0)
                    continue;
                count++;
                for (int h = 0; h < width; h++)
                    sum[h] += hidden[(b * length + t) * width + h];
            }
            for (int h = 0; h < width; h++)
                pooled[b * width + h] = (float)(sum[h] / count);
        }
        return (pooled, results[1].GetTensorDataAsSpan<float>().ToArray());
    }
}
