using LoraGen.Files;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Quantization;

/// <summary>
/// The quantized frozen base (QLoRA): NF4 / double quantization / int8 against closed forms written here in plain C#
/// floats (not with the library's code paths), and training through it against the dequantized float weight.
/// </summary>
public sealed class QuantizationTests
{
    // bitsandbytes-foundation/bitsandbytes @ 95f9af309d4d5793847169c39288dcd3fcbdf564, bitsandbytes/functional.py,
    // get_4bit_type("nf4"), copied as Python writes them (double literals; torch.tensor makes float32 of them).
    private static readonly double[] BitsandbytesNf4 =
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ];

    private static float[] Table => BitsandbytesNf4.Select(v => (float)v).ToArray();

    [Fact]
    public void Nf4_table_is_bitsandbytes_exactly()
    {
        Assert.Equal(16, Nf4.Code.Count);
        for (var i = 0; i < 16; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits((float)BitsandbytesNf4[i]), BitConverter.SingleToInt32Bits(Nf4.Code[i]));
    }

    /// <summary>Index of the nearest code: the number of float32 midpoints strictly below s (a tie takes the lower).</summary>
    private static int Nearest(float[] code, float s)
    {
        var q = 0;
        for (var i = 0; i + 1 < code.Length; i++)
            if ((code[i] + code[i + 1]) / 2f < s)
                q = i + 1;
        return q;
    }

    /// <summary>Blockwise absmax quantization in plain floats: (codes, absmax per block).</summary>
    private static (int[] Codes, float[] Absmax) ReferenceBlockwise(float[] values, int blockSize, float[] code)
    {
        var blocks = (values.Length + blockSize - 1) / blockSize;
        var codes = new int[values.Length];
        var absmax = new float[blocks];
        for (var b = 0; b < blocks; b++)
        {
            var end = Math.Min(values.Length, (b + 1) * blockSize);
            var max = 0f;
            for (var i = b * blockSize; i < end; i++)
                max = Math.Max(max, Math.Abs(values[i]));
            absmax[b] = max;
            var reciprocal = 1f / Math.Max(max, 1e-38f);
            for (var i = b * blockSize; i < end; i++)
                codes[i] = Nearest(code, Math.Clamp(values[i] * reciprocal, -1f, 1f));
        }
        return (codes, absmax);
    }

    private static float[] FixedWeight(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++)
            values[i] = (float)((random.NextDouble() * 2 - 1) * (1 + i % 7));
        // A block of zeros (absmax 0), an exact midpoint tie in a block whose absmax is 1, and a negative absmax.
        for (var i = 64; i < 128; i++)
            values[i] = 0f;
        values[128] = 1f;
        values[129] = (Table[3] + Table[4]) / 2f;
        values[130] = (Table[10] + Table[11]) / 2f;
        for (var i = 131; i < 192; i++)
            values[i] = values[i] / 100f;
        values[192] = -50f;
        return values;
    }

    private static Tensor Buffer(QuantizedLinear layer, string name) => layer.named_buffers().Single(b => b.name == name).buffer;

    private static void AssertBitwise(float[] expected, Tensor actual)
    {
        var values = actual.contiguous().data<float>().ToArray();
        Assert.Equal(expected.Length, values.Length);
        for (var i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(values[i]))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {values[i]:R}");
    }

    [Theory]
    [InlineData(12, 64)]   // whole blocks
    [InlineData(7, 45)]    // 315 values: a short last block and an odd count (a padding nibble)
    public void Nf4_round_trip_equals_the_closed_form_bit_for_bit(int rows, int columns)
    {
        var values = FixedWeight(rows * columns, 7);
        using var weight = tensor(values).view(rows, columns);
        using var layer = QuantizedLinear.FromWeight(weight, null, QuantizationKind.Nf4);
        var (codes, absmax) = ReferenceBlockwise(values, 64, Table);

        var expected = values.Select((_, i) => Table[codes[i]] * absmax[i / 64]).ToArray();
        using var dequantized = layer.Dequantize();
        Assert.Equal(new long[] { rows, columns }, dequantized.shape);
        AssertBitwise(expected, dequantized);
        AssertBitwise(absmax, Buffer(layer, "absmax"));

        // Two codes per byte, the first in the high nibble; an odd count pads with the code of 0.0 (7).
        var packed = Buffer(layer, "codes").data<byte>().ToArray();
        Assert.Equal((values.Length + 1) / 2, packed.Length);
        for (var i = 0; i < packed.Length; i++)
        {
            var high = codes[2 * i];
            var low = 2 * i + 1 < codes.Length ? codes[2 * i + 1] : 7;
            Assert.Equal((byte)(high << 4 | low), packed[i]);
        }
        Assert.Equal(3, codes[129]);   // the tie took the lower code
        Assert.Equal(10, codes[130]);
        Assert.Equal(7, codes[64]);    // zero block → code of 0.0
    }

    [Fact]
    public void Cpu_kernels_and_tensor_operations_agree_bit_for_bit()
    {
        // The CPU path is plain C# over the tensors' memory; other devices use libtorch operations (bucketize,
        // index_select). Both must give the same codes and values.
        var values = FixedWeight(33 * 70, 5);
        using var weight = tensor(values).view(33, 70);
        var (packed, absmax) = Nf4.Quantize(weight);
        var (packedOps, absmaxOps) = Nf4.Quantize(weight, tensorOps: true);
        Assert.Equal(packedOps.data<byte>().ToArray(), packed.data<byte>().ToArray());
        AssertBitwise(absmaxOps.data<float>().ToArray(), absmax);
        using var fast = Nf4.Dequantize(packed, absmax, values.Length);
        using var ops = Nf4.Dequantize(packed, absmax, values.Length, tensorOps: true);
        AssertBitwise(ops.data<float>().ToArray(), fast);
        // The double-quantized absmax: the CPU loop against dequantize_blockwise + offset as libtorch operations.
        using var centered = randn(1000).abs_() - 0.4f;
        var (codes, scale) = DynamicMap.Quantize(centered, Nf4.DoubleQuantizationBlockSize);
        using var offset = tensor(0.37f);
        using var loop = DynamicMap.DequantizeWithOffset(codes, scale, offset, Nf4.DoubleQuantizationBlockSize);
        using var withOps = DynamicMap.Dequantize(codes, scale, Nf4.DoubleQuantizationBlockSize).add_(offset);
        AssertBitwise(withOps.data<float>().ToArray(), loop);
        foreach (var t in new[] { packed, absmax, packedOps, absmaxOps })
            t.Dispose();
    }

    /// <summary>bitsandbytes' create_dynamic_map(signed=True) in plain floats: libtorch's float32 linspace
    /// (start + step·i below the middle, end − step·(n−1−i) above), midpoints, times float32(10^(i−6)).</summary>
    private static float[] ReferenceDynamicMap()
    {
        var data = new List<float>();
        for (var i = 0; i < 7; i++)
        {
            var items = (1 << i) + 1;
            float start = 0.1f, end = 1f, step = (end - start) / (items - 1);
            var boundaries = Enumerable.Range(0, items)
                .Select(k => k < items / 2 ? start + step * k : end - step * (items - k - 1)).ToArray();
            var scale = (float)Math.Pow(10, i - 6);
            for (var k = 0; k + 1 < items; k++)
                data.Add(scale * ((boundaries[k] + boundaries[k + 1]) / 2f));
            for (var k = 0; k + 1 < items; k++)
                data.Add(-scale * ((boundaries[k] + boundaries[k + 1]) / 2f));
        }
        data.Add(0f);
        data.Add(1f);
        data.Sort();
        return data.ToArray();
    }

    [Fact]
    public void Dynamic_map_is_bitsandbytes_signed_8bit_map()
    {
        var expected = ReferenceDynamicMap();
        var actual = DynamicMap.Values;
        Assert.Equal(256, actual.Length);
        Assert.Equal(1f, actual[255]);
        Assert.Contains(0f, actual);
        for (var i = 0; i < 256; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 2e-7 * Math.Max(1e-6, Math.Abs(expected[i])) + 1e-12,
                $"value {i}: closed form {expected[i]:R}, library {actual[i]:R}");
        for (var i = 1; i < 256; i++)
            Assert.True(actual[i - 1] < actual[i]);
    }

    [Fact]
    public void Double_quantization_reproduces_its_closed_form()
    {
        // 130 × 256 = 33,280 weights = 520 absmax blocks = 2 full blocks of 256 constants and one of 8.
        var values = FixedWeight(130 * 256, 11);
        using var weight = tensor(values).view(130, 256);
        using var layer = QuantizedLinear.FromWeight(weight, null, QuantizationKind.Nf4DoubleQuantized);
        var (codes, absmax) = ReferenceBlockwise(values, 64, Table);

        var offset = Buffer(layer, "absmax_offset").item<float>();
        Assert.Equal(absmax.Average(a => (double)a), offset, 5);   // the mean (libtorch's summation order)
        var centered = absmax.Select(a => a - offset).ToArray();
        var map = DynamicMap.Values;
        var (codes2, absmax2) = ReferenceBlockwise(centered, 256, map);

        Assert.Equal(codes2.Select(c => (byte)c).ToArray(), Buffer(layer, "absmax").data<byte>().ToArray());
        AssertBitwise(absmax2, Buffer(layer, "absmax_scale"));
        var scales = centered.Select((_, i) => map[codes2[i]] * absmax2[i / 256] + offset).ToArray();
        using (var actualScales = layer.Scales())
            AssertBitwise(scales, actualScales);
        var expected = values.Select((_, i) => Table[codes[i]] * scales[i / 64]).ToArray();
        using var dequantized = layer.Dequantize();
        AssertBitwise(expected, dequantized);
        // The storage: 4 bits per weight + 1 byte per 64 weights + 4 bytes per 256 blocks + the offset.
        Assert.Equal(values.Length / 2 + 520 + 3 * 4 + 4, layer.WeightBytes);
    }

    [Theory]
    [InlineData(9, 37)]
    [InlineData(300, 500)]   // quantized in row chunks of 131: three, the last one short
    public void Int8_round_trip_equals_the_closed_form(int rows, int columns)
    {
        var values = FixedWeight(rows * columns, 3);
        for (var j = 0; j < columns; j++)
            values[4 * columns + j] = 0f;   // a zero row
        using var weight = tensor(values).view(rows, columns);
        using var layer = QuantizedLinear.FromWeight(weight, null, QuantizationKind.Int8);

        var expectedCodes = new sbyte[values.Length];
        var expected = new float[values.Length];
        for (var r = 0; r < rows; r++)
        {
            var max = 0f;
            for (var j = 0; j < columns; j++)
                max = Math.Max(max, Math.Abs(values[r * columns + j]));
            var scale = max == 0 ? 0f : 1f / max * 127f;
            for (var j = 0; j < columns; j++)
            {
                var i = r * columns + j;
                expectedCodes[i] = (sbyte)MathF.Round(values[i] * scale, MidpointRounding.ToEven);
                expected[i] = expectedCodes[i] * max * 7.874015718698502e-3f;
            }
        }
        Assert.Equal(expectedCodes, Buffer(layer, "codes").data<sbyte>().ToArray());
        using var dequantized = layer.Dequantize();
        AssertBitwise(expected, dequantized);
    }

    [Theory]
    [InlineData(QuantizationKind.Int8)]
    [InlineData(QuantizationKind.Nf4)]
    [InlineData(QuantizationKind.Nf4DoubleQuantized)]
    public void Forward_is_x_times_dequantized_weight_plus_bias(QuantizationKind kind)
    {
        manual_seed(3);
        using var linear = nn.Linear(96, 40);
        using var layer = QuantizedLinear.FromLinear(linear, kind);
        Assert.Empty(layer.parameters());
        Assert.Equal(96, layer.InFeatures);
        Assert.Equal(40, layer.OutFeatures);
        using var x = randn(3, 5, 96);
        using var w = layer.Dequantize();
        using var expected = nn.functional.linear(x.to(float64), w.to(float64), linear.bias!.to(float64));
        using var actual = layer.forward(x);
        Assert.Equal(new long[] { 3, 5, 40 }, actual.shape);
        Assert.True(actual.to(float64).allclose(expected, rtol: 1e-5, atol: 1e-5));
        using var xg = x.clone().requires_grad_(true);
        using var traced = layer.forward(xg);
        Assert.True(traced.to(float64).allclose(expected, rtol: 1e-5, atol: 1e-5));
        // The quantization error is what it should be: NF4 within half a code gap of the block absmax, int8 within 1/254 of the row's.
        var maxError = (w - linear.weight!).abs().max().item<float>();
        var bound = kind == QuantizationKind.Int8 ? linear.weight!.abs().max().item<float>() / 254f * 1.001f : linear.weight!.abs().max().item<float>() * 0.153f;   // half the widest gap, (-0.696 - -1) / 2
        Assert.True(maxError <= bound, $"max error {maxError} > {bound}");
    }

    [Theory]
    [InlineData(QuantizationKind.Int8)]
    [InlineData(QuantizationKind.Nf4)]
    [InlineData(QuantizationKind.Nf4DoubleQuantized)]
    public void Adapter_gradients_through_the_quantized_base_equal_those_through_the_float_weight(QuantizationKind kind)
    {
        manual_seed(5);
        using var first = QuantizedLinear.FromLinear(nn.Linear(32, 48), kind);
        using var second = QuantizedLinear.FromLinear(nn.Linear(48, 24), kind);
        using var w1 = first.Dequantize();
        using var w2 = second.Dequantize();
        using var x = randn(6, 32);
        using var target = randn(6, 24);
        var a1 = randn(4, 32) * 0.1; var b1 = randn(48, 4) * 0.1;
        var a2 = randn(4, 48) * 0.1; var b2 = randn(24, 4) * 0.1;

        // Two adapted layers stacked: the lower adapter's gradient flows back through the upper quantized base.
        (Tensor[] Grads, double Loss) Run(Func<Tensor, Tensor> base1, Func<Tensor, Tensor> base2)
        {
            using var scope = NewDisposeScope();
            var ps = new[] { a1, b1, a2, b2 }.Select(p => p.detach().clone().requires_grad_(true)).ToArray();
            var h = base1(x) + x.matmul(ps[0].t()).matmul(ps[1].t()) * 2.0;
            h = nn.functional.gelu(h);
            var y = base2(h) + h.matmul(ps[2].t()).matmul(ps[3].t()) * 2.0;
            var loss = (y - target).pow(2).mean();
            loss.backward();
            return (ps.Select(p => p.grad!.clone().MoveToOuterDisposeScope()).ToArray(), loss.item<float>());
        }

        var quantized = Run(first.forward, second.forward);
        var reference = Run(t => nn.functional.linear(t, w1, first.Bias), t => nn.functional.linear(t, w2, second.Bias));
        Assert.Equal(reference.Loss, quantized.Loss, 5);
        for (var i = 0; i < 4; i++)
            Assert.True(quantized.Grads[i].allclose(reference.Grads[i], rtol: 1e-5, atol: 1e-6), $"gradient {i} differs");
        // The base has nothing to train.
        Assert.Empty(first.parameters());
    }

    [Fact]
    public void A_layer_built_inside_a_dispose_scope_outlives_it()
    {
        QuantizedLinear layer;
        using (NewDisposeScope())
        {
            var w = randn(8, 64);
            layer = QuantizedLinear.FromWeight(w, randn(8), QuantizationKind.Nf4DoubleQuantized);
        }
        using (layer)
        using (var x = randn(2, 64))
        using (var y = layer.forward(x))
            Assert.Equal(new long[] { 2, 8 }, y.shape);
    }

    [Fact]
    public void Backward_through_the_base_gives_grad_times_weight_to_the_input()
    {
        manual_seed(9);
        using var layer = QuantizedLinear.FromLinear(nn.Linear(20, 12), QuantizationKind.Nf4);
        using var x = randn(4, 20).requires_grad_(true);
        using var grad = randn(4, 12);
        using var y = layer.forward(x);
        y.backward([grad]);
        using var w = layer.Dequantize();
        using var expected = grad.matmul(w);
        Assert.True(x.grad!.allclose(expected, rtol: 1e-6, atol: 1e-6));
    }

    [Fact]
    public void Checkpoint_is_quantized_tensor_by_tensor()
    {
        manual_seed(13);
        using var w = randn(16, 64);
        using var b = randn(16);
        using var other = randn(10);
        var path = Path.Combine(ScratchDirectories.New(), "quantized.safetensors");
        SafetensorsWriter.WriteFile(path,
        [
            TensorBytes.ToEntry("layers.0.q.weight", w), TensorBytes.ToEntry("layers.0.q.bias", b),
            TensorBytes.ToEntry("norm.weight", other), TensorBytes.ToEntry("embed.weight", w),
        ]);
        using var file = SafetensorsReader.Open(path);
        using var contents = QuantizedCheckpoint.Read(file, prefix => prefix.StartsWith("layers.", StringComparison.Ordinal), QuantizationKind.Nf4);
        Assert.Equal(["layers.0.q"], contents.Layers.Keys);
        Assert.Equal(["embed.weight", "norm.weight"], contents.Tensors.Keys.Order());
        using var direct = QuantizedLinear.FromWeight(w, b, QuantizationKind.Nf4);
        using var fromFile = contents.Layers["layers.0.q"].Dequantize();
        using var expected = direct.Dequantize();
        Assert.True(fromFile.eq(expected).all().item<bool>());
        Assert.True(contents.Layers["layers.0.q"].Bias!.eq(b).all().item<bool>());
        Assert.True(contents.Tensors["norm.weight"].eq(other).all().item<bool>());
    }
}
