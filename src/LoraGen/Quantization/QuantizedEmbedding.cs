using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// A frozen Embedding whose table [num, dim] is stored quantized (<see cref="QuantizationKind"/>, the formats of
/// <see cref="QuantizedLinear"/>). A lookup dequantizes only the rows it reads, bit for bit the rows of
/// <see cref="Dequantize"/>. Everything it holds is a buffer; it has no parameters and passes no gradient (token ids
/// have none). For NF4 the dimension must be a multiple of 64, so that every row is whole blocks.
/// </summary>
public sealed class QuantizedEmbedding : nn.Module<Tensor, Tensor>
{
    // The field names are the buffer names: Module.to() finds the fields by name and replaces them.
#pragma warning disable IDE0044 // Module.to() assigns these by reflection.
    private Tensor codes;
    private Tensor absmax;
    private Tensor? absmax_scale;
    private Tensor? absmax_offset;
#pragma warning restore IDE0044

    private QuantizedEmbedding(QuantizedWeight table) : base(nameof(QuantizedEmbedding))
    {
        foreach (var t in new[] { table.Codes, table.Absmax, table.AbsmaxScale, table.AbsmaxOffset })
            t?.DetachFromDisposeScope();
        Kind = table.Kind;
        NumEmbeddings = table.Rows;
        EmbeddingDim = table.Columns;
        codes = table.Codes;
        absmax = table.Absmax;
        absmax_scale = table.AbsmaxScale;
        absmax_offset = table.AbsmaxOffset;
        register_buffer(nameof(codes), codes);
        register_buffer(nameof(absmax), absmax);
        if (absmax_scale is not null)
            register_buffer(nameof(absmax_scale), absmax_scale);
        if (absmax_offset is not null)
            register_buffer(nameof(absmax_offset), absmax_offset);
    }

    /// <summary>The storage format of the table.</summary>
    public QuantizationKind Kind { get; }

    /// <summary>Rows of the table (the vocabulary).</summary>
    public long NumEmbeddings { get; }

    /// <summary>Length of each row.</summary>
    public long EmbeddingDim { get; }

    /// <summary>Bytes of the quantized table: codes and scales.</summary>
    public long WeightBytes => Stored.Bytes;

    /// <summary>Whether a table of <paramref name="dimension"/> columns can be stored as <paramref name="kind"/>: NF4
    /// needs whole blocks of 64 per row.</summary>
    public static bool Supports(long dimension, QuantizationKind kind) =>
        kind == QuantizationKind.Int8 || dimension % Nf4.BlockSize == 0;

    /// <summary>Quantizes <paramref name="embedding"/>'s table. The Embedding is not changed or disposed.</summary>
    public static QuantizedEmbedding FromEmbedding(Embedding embedding, QuantizationKind kind)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        return FromWeight(embedding.weight!, kind);
    }

    /// <summary>Quantizes a float table [num, dim] (any float type, any device); the input is not kept.</summary>
    public static QuantizedEmbedding FromWeight(Tensor weight, QuantizationKind kind)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() != 2)
            throw new ArgumentException($"an embedding table is [num, dim]; got [{string.Join(", ", weight.shape)}]", nameof(weight));
        if (!weight.is_floating_point())
            throw new ArgumentException($"the table must be floating point; got {weight.dtype}", nameof(weight));
        if (!Supports(weight.shape[1], kind))
            throw new ArgumentException(
                $"{kind} stores blocks of {Nf4.BlockSize} values, and rows of {weight.shape[1]} would split blocks between rows, so a " +
                "lookup could not dequantize its rows alone; use QuantizationKind.Int8 (one scale per row) or keep this embedding float",
                nameof(kind));
        return new QuantizedEmbedding(QuantizedWeight.Of(weight, kind));
    }

    /// <summary>The float32 table [num, dim] the codes stand for (a new tensor).</summary>
    public Tensor Dequantize() => Stored.Dequantize();

    /// <summary>Rows <paramref name="ids"/> of the table: [..., dim] in float32, each row dequantized from its own codes.</summary>
    public override Tensor forward(Tensor ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var index = ids.reshape(-1).to(ScalarType.Int64);
        long count = index.shape[0];
        Tensor rows;
        if (Kind == QuantizationKind.Int8)
        {
            // Int8Rows.Dequantize's operations on the chosen rows: (float(codes) · s) · (1/127).
            using var rowScales = absmax.index_select(0, index).unsqueeze(1);
            rows = codes.index_select(0, index).to(ScalarType.Float32).mul_(rowScales).mul_(Int8Rows.InverseOf127);
        }
        else
        {
            long blocksPerRow = EmbeddingDim / Nf4.BlockSize;
            using var scales = Kind == QuantizationKind.Nf4 ? absmax.alias() : Stored.Scales();
            var packed = codes.view(NumEmbeddings, EmbeddingDim / 2).index_select(0, index).reshape(-1);
            var rowScales = scales.view(NumEmbeddings, blocksPerRow).index_select(0, index).reshape(-1);
            rows = Nf4.Dequantize(packed, rowScales, count * EmbeddingDim);
        }
        return rows.view([.. ids.shape, EmbeddingDim]).MoveToOuterDisposeScope();
    }

    private QuantizedWeight Stored => new(Kind, NumEmbeddings, EmbeddingDim, codes, absmax, absmax_scale, absmax_offset);
}
