using System.Text.Json;
using LoraGen.Files;
using Onnx;
using SpamFilter.Import;

namespace LoraGen.Samples.Tests;

/// <summary>The import of all-MiniLM-L6-v2: the names it derives from the ONNX graph, what it writes, and what it reuses.</summary>
[Collection(MiniLmCollection.Name)]
public sealed class MiniLmImportTests(MiniLmFixture minilm)
{
    [Fact]
    public void Derived_matmul_weight_names_equal_the_reference_mapping()
    {
        var graph = ModelProto.Parser.ParseFrom(minilm.Onnx).Graph;
        var reference = JsonSerializer.Deserialize<Dictionary<string, string>>(
            File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Reference", "minilm-onnx-to-hf.json")))!;

        var parameters = OnnxWeightMap.Derive(graph);

        var transposed = parameters.Where(p => p.Transposed).ToDictionary(p => p.OnnxName, p => p.Name);
        Assert.Equal(36, reference.Count);
        Assert.Equal(reference.OrderBy(e => e.Key), transposed.OrderBy(e => e.Key));
        // Every other float initializer keeps its own (Hugging Face) name.
        Assert.All(parameters.Where(p => !p.Transposed), p => Assert.Equal(p.OnnxName, p.Name));
        Assert.Equal(36 + 67, parameters.Count);
    }

    [Fact]
    public void The_checkpoint_has_BertModel_keys_and_shapes_and_the_pooler()
    {
        using var file = SafetensorsReader.Open(minilm.CheckpointPath);
        var shapes = file.Tensors.ToDictionary(t => t.Name, t => t.Shape.ToArray());

        Assert.Equal(5 + 6 * 16 + 2, shapes.Count);
        Assert.Equal([30522L, 384], shapes["embeddings.word_embeddings.weight"]);
        Assert.Equal([384L, 384], shapes["encoder.layer.0.attention.self.query.weight"]);
        Assert.Equal([1536L, 384], shapes["encoder.layer.5.intermediate.dense.weight"]); // [out, in], transposed from [in, out]
        Assert.Equal([384L, 1536], shapes["encoder.layer.5.output.dense.weight"]);
        Assert.Equal([384L, 384], shapes["pooler.dense.weight"]);
        Assert.DoesNotContain("embeddings.position_ids", shapes.Keys); // checked to be 0…511, then computed by the model
        Assert.All(file.Tensors, t => Assert.Equal(SafetensorsDType.F32, t.DType));
        Assert.Equal(30522, minilm.Vocabulary.Count);
    }

    [Fact]
    public void A_transposed_weight_holds_the_onnx_matrix_transposed()
    {
        var graph = ModelProto.Parser.ParseFrom(minilm.Onnx).Graph;
        var onnx = graph.Initializer.Single(t => t.Name == "938"); // encoder.layer.0.intermediate.dense.weight, [384, 1536]
        var stored = Floats(onnx.RawData.ToByteArray());
        using var file = SafetensorsReader.Open(minilm.CheckpointPath);
        var saved = Floats(file.ReadBytes("encoder.layer.0.intermediate.dense.weight")); // [1536, 384]

        foreach (var (i, o) in new[] { (0, 0), (1, 0), (0, 1), (383, 1535), (17, 1000) })
            Assert.Equal(stored[i * 1536 + o], saved[o * 384 + i]);
    }

    [Fact]
    public void A_second_ensure_reuses_the_imported_files()
    {
        var written = File.GetLastWriteTimeUtc(minilm.CheckpointPath);

        Assert.Equal(minilm.CheckpointPath, MiniLmCheckpoint.Ensure(minilm.CacheDirectory));
        Assert.Equal(written, File.GetLastWriteTimeUtc(minilm.CheckpointPath));
        Assert.Empty(Directory.GetFiles(minilm.CacheDirectory, "*.tmp"));
    }

    private static float[] Floats(byte[] bytes) =>
        Enumerable.Range(0, bytes.Length / 4).Select(i => BitConverter.ToSingle(bytes, i * 4)).ToArray();
}
