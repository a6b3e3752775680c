using TorchSharp;
using TorchSharp.Modules;
using static LoraGen.Tests.Support.Closeness;
using static LoraGen.Tests.Support.Adapters;
using static TorchSharp.torch;

namespace LoraGen.Tests;

public sealed class EmbeddingAndConvTests
{
    [Fact]
    public void Embedding_shapes_counts_and_forward_closed_form()
    {
        torch.manual_seed(40);
        var embedding = nn.Embedding(50, 12);
        var tokens = randint(0, 50, [3, 7]);
        var before = embedding.forward(tokens);
        var layer = new LoraEmbedding(embedding, new LoraConfig { Rank = 4, Alpha = 8 });

        Assert.Equal([4L, 50L], Adapter(layer, "lora_embedding_A").shape);
        Assert.Equal([12L, 4L], Adapter(layer, "lora_embedding_B").shape);
        Assert.Equal(4 * (50 + 12), Count(layer));
        AssertBitIdentical(layer.forward(tokens), before); // A starts at zero

        Randomize(layer);
        // Closed form: one-hot(x) · (W + 2 · (B·A)ᵀ).
        var a = Adapter(layer, "lora_embedding_A").to(float64);
        var b = Adapter(layer, "lora_embedding_B").to(float64);
        var table = embedding.weight!.to(float64) + 2.0 * b.matmul(a).t();
        var expected = nn.functional.one_hot(tokens, 50).to(float64).matmul(table);
        AssertClose(layer.forward(tokens), expected, 1e-5);
    }

    [Fact]
    public void Embedding_merge_equals_unmerged()
    {
        torch.manual_seed(41);
        var layer = new LoraEmbedding(nn.Embedding(30, 10), new LoraConfig { Rank = 2 });
        Randomize(layer);
        var tokens = randint(0, 30, [4, 5]);
        var unmerged = layer.forward(tokens);
        layer.Merge();
        layer.eval(); // merged: inference only
        AssertClose(layer.forward(tokens), unmerged, 1e-5);
    }

    [Fact]
    public void Conv1d_shapes_counts_and_merge_equivalence()
    {
        torch.manual_seed(42);
        var conv = nn.Conv1d(6, 10, 3, stride: 2, padding: 1, dilation: 2);
        var x = randn(2, 6, 17);
        var before = conv.forward(x);
        var layer = new LoraConv1d(conv, new LoraConfig { Rank = 2 });
        Assert.Equal([2L, 6L, 3L], Adapter(layer, "lora_A.weight").shape);
        Assert.Equal([10L, 2L, 1L], Adapter(layer, "lora_B.weight").shape);
        Assert.Equal(2 * (6 * 3 + 10), Count(layer));
        AssertBitIdentical(layer.forward(x), before);

        Randomize(layer);
        var unmerged = layer.forward(x);
        Assert.Equal(before.shape, unmerged.shape);
        // Closed form: one convolution with W + s·ΔW, ΔW[o,i,k] = Σ_r B[o,r] A[r,i,k].
        var delta = einsum("or,rik->oik", Adapter(layer, "lora_B.weight").squeeze(2), Adapter(layer, "lora_A.weight"));
        var expected = nn.functional.conv1d(x, conv.weight! + delta, conv.bias, stride: 2, padding: 1, dilation: 2);
        AssertClose(unmerged, expected, 1e-5);
        layer.Merge();
        layer.eval();
        AssertClose(layer.forward(x), unmerged, 1e-5);
    }

    [Fact]
    public void Conv2d_shapes_counts_and_merge_equivalence()
    {
        torch.manual_seed(43);
        var conv = nn.Conv2d(4, 8, (3, 5), stride: (1, 2), padding: (1, 2));
        var x = randn(2, 4, 9, 11);
        var before = conv.forward(x);
        var layer = new LoraConv2d(conv, new LoraConfig { Rank = 3, Alpha = 6 });
        Assert.Equal([3L, 4L, 3L, 5L], Adapter(layer, "lora_A.weight").shape);
        Assert.Equal([8L, 3L, 1L, 1L], Adapter(layer, "lora_B.weight").shape);
        Assert.Equal(3 * (4 * 15 + 8), Count(layer));
        Assert.Equal(8 * 4 * 15, layer.Shape.BaseWeightParameters);
        AssertBitIdentical(layer.forward(x), before);

        Randomize(layer);
        var unmerged = layer.forward(x);
        var delta = einsum("or,rihw->oihw", Adapter(layer, "lora_B.weight").flatten(1), Adapter(layer, "lora_A.weight"));
        var expected = nn.functional.conv2d(x, conv.weight! + 2.0 * delta, conv.bias, strides: [1, 2], padding: [1, 2]);
        AssertClose(unmerged, expected, 1e-5);
        layer.Merge();
        layer.eval();
        AssertClose(layer.forward(x), unmerged, 1e-5);
        layer.Unmerge();
        AssertClose(layer.forward(x), unmerged, 0);
    }

    [Fact]
    public void Conv2d_with_same_padding_keeps_the_output_shape()
    {
        torch.manual_seed(44);
        var conv = nn.Conv2d(3, 6, 3, Padding.Same);
        var layer = new LoraConv2d(conv, new LoraConfig { Rank = 2 });
        Randomize(layer);
        var x = randn(1, 3, 8, 8);
        var unmerged = layer.forward(x);
        Assert.Equal([1L, 6L, 8L, 8L], unmerged.shape);
        layer.Merge();
        layer.eval();
        AssertClose(layer.forward(x), unmerged, 1e-5);
    }

    [Fact]
    public void Adapters_follow_the_model_to_another_dtype()
    {
        torch.manual_seed(45);
        var embedding = new LoraEmbedding(nn.Embedding(30, 10), new LoraConfig { Rank = 2 });
        var conv = new LoraConv1d(nn.Conv1d(4, 6, 3), new LoraConfig { Rank = 2 });
        embedding.to(ScalarType.Float64);
        conv.to(ScalarType.Float64);
        Assert.All(embedding.NamedAdapterParameters, p => Assert.Equal(ScalarType.Float64, p.Parameter.dtype));
        Assert.All(conv.NamedAdapterParameters, p => Assert.Equal(ScalarType.Float64, p.Parameter.dtype));
        Randomize(embedding);
        var tokens = randint(0, 30, [2, 3]);
        var unmerged = embedding.forward(tokens);
        Assert.Equal(ScalarType.Float64, unmerged.dtype);
        embedding.Merge();
        embedding.eval();
        AssertClose(embedding.forward(tokens), unmerged, 1e-12); // merged in float64, not float32
    }

    [Fact]
    public void Grouped_convolutions_are_refused_by_name()
    {
        var error = Assert.Throws<LoraConfigurationException>(
            () => new LoraConv2d(nn.Conv2d(8, 8, 3, groups: 4), new LoraConfig { Rank = 2 }));
        Assert.Contains("groups = 4", error.Message);
    }

    [Fact]
    public void ApplyLora_names_the_path_of_a_grouped_convolution()
    {
        var model = nn.Sequential(("block", new Support.GroupedConvBlock()));
        var error = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora());
        Assert.Equal("LoRA target 'block.conv': grouped convolutions (groups = 4) cannot be adapted yet; only groups = 1 is supported.", error.Message);
        Assert.Empty(model.LoraLayers());
    }
}
