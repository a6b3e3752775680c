using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Quantization;

/// <summary><see cref="QuantizedEmbedding"/>: the same formats as a QuantizedLinear, a lookup that dequantizes only its
/// rows, and <see cref="LoraOptions.QuantizeFrozenEmbeddings"/>.</summary>
public sealed class QuantizedEmbeddingTests
{
    [Theory]
    [InlineData(QuantizationKind.Int8, 40)]
    [InlineData(QuantizationKind.Nf4, 128)]
    [InlineData(QuantizationKind.Nf4DoubleQuantized, 64)]
    public void A_lookup_is_the_rows_of_the_dequantized_table_bit_for_bit(QuantizationKind kind, int dim)
    {
        using var scope = NewDisposeScope();
        var table = randn(300, dim);
        using var embedding = QuantizedEmbedding.FromWeight(table, kind);
        Assert.Empty(embedding.parameters());
        // The same format as a Linear's weight: the codes of one are the codes of the other.
        using var asLinear = QuantizedLinear.FromWeight(table, null, kind);
        var whole = embedding.Dequantize();
        Closeness.AssertBitIdentical(whole, asLinear.Dequantize());

        var ids = tensor(new long[,] { { 0, 299, 17 }, { 17, 5, 140 } });
        var rows = embedding.forward(ids);
        Assert.Equal(new long[] { 2, 3, dim }, rows.shape);
        Closeness.AssertBitIdentical(rows, whole.index_select(0, ids.reshape(-1)).view(2, 3, dim));   // F.embedding is a row lookup
        Assert.True(embedding.WeightBytes < table.numel() * 4 / 3);
    }

    [Fact]
    public void Nf4_refuses_rows_that_are_not_whole_blocks_and_names_the_way_out()
    {
        var error = Assert.Throws<ArgumentException>(() => QuantizedEmbedding.FromWeight(randn(10, 100), QuantizationKind.Nf4));
        Assert.Contains("rows of 100 would split blocks", error.Message, StringComparison.Ordinal);
        Assert.Contains("QuantizationKind.Int8", error.Message, StringComparison.Ordinal);
        using var int8 = QuantizedEmbedding.FromWeight(randn(10, 100), QuantizationKind.Int8);
        Assert.Equal(100, int8.EmbeddingDim);
    }

    private sealed class Tagger : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE0044 // ApplyLora replaces these through the registry and the fields.
        private nn.Module<Tensor, Tensor> tokens = nn.Embedding(500, 64);
        private nn.Module<Tensor, Tensor> positions = nn.Embedding(16, 50);   // not whole NF4 blocks: stays float
        private nn.Module<Tensor, Tensor> proj = nn.Linear(64, 64);
        private nn.Module<Tensor, Tensor> head = nn.Linear(64, 5);
#pragma warning restore IDE0044

        public Tagger() : base(nameof(Tagger)) => RegisterComponents();

        public override Tensor forward(Tensor ids) => head.call(proj.call(tokens.call(ids)));
    }

    [Fact]
    public void QuantizeFrozenEmbeddings_quantizes_the_frozen_tables_it_can()
    {
        using var scope = NewDisposeScope();
        var config = new AdapterConfig { Rank = 4, TargetModules = ["proj"] };
        using var model = new Tagger();
        var floatTable = model.named_parameters().Single(p => p.name == "tokens.weight").parameter.detach().clone();
        var report = model.ApplyLora(config, new LoraOptions { Quantize = QuantizationKind.Nf4, QuantizeFrozenEmbeddings = true });

        var tokens = Assert.IsType<QuantizedEmbedding>(model.named_modules().Single(m => m.name == "tokens").module);
        using var expected = QuantizedEmbedding.FromWeight(floatTable, QuantizationKind.Nf4);
        Closeness.AssertBitIdentical(tokens.Dequantize(), expected.Dequantize());
        Assert.IsType<Embedding>(model.named_modules().Single(m => m.name == "positions").module);
        Assert.IsType<Linear>(model.named_modules().Single(m => m.name == "head").module);   // QuantizeFrozenLinears is off
        Assert.Contains("tokens.codes", model.state_dict().Keys);
        // Counted as the table it stands for.
        using var reference = new Tagger();
        Assert.Equal(reference.ApplyLora(config).AllParameters, report.AllParameters);

        model.call(tensor(new long[] { 3, 499 })).square().sum().backward();
        Assert.All(model.LoraParameters(), p => Assert.NotNull(p.grad));
        var dir = ScratchDirectories.New();
        var error = Assert.Throws<InvalidOperationException>(() => model.SavePretrained(dir));
        Assert.Contains("tokens (QuantizedEmbedding)", error.Message, StringComparison.Ordinal);
    }
}
