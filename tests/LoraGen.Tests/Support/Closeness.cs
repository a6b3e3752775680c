using static TorchSharp.torch;

namespace LoraGen.Tests.Support;

public static class Closeness
{
    /// <summary>max |actual − expected| / max |expected|, in float64.</summary>
    public static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var a = actual.to(ScalarType.Float64);
        var e = expected.to(ScalarType.Float64);
        var scale = Math.Max(e.abs().max().item<double>(), 1e-30);
        return (a - e).abs().max().item<double>() / scale;
    }

    public static void AssertClose(Tensor actual, Tensor expected, double relativeTolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        var error = RelativeError(actual, expected);
        Assert.True(error <= relativeTolerance, $"relative error {error:G3} exceeds {relativeTolerance:G3}");
    }

    /// <summary>Same dtype, same shape, same bits.</summary>
    public static void AssertBitIdentical(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(BitIdentical(actual, expected), "tensors differ in at least one bit");
    }

    /// <summary>Compares raw bytes: value equality would call -0 and +0 the same, and two NaNs different.</summary>
    public static bool BitIdentical(Tensor actual, Tensor expected)
    {
        if (actual.dtype != expected.dtype || !actual.shape.SequenceEqual(expected.shape))
            return false;
        using var scope = NewDisposeScope();
        var a = actual.contiguous().cpu().bytes.ToArray();
        var e = expected.contiguous().cpu().bytes.ToArray();
        return a.AsSpan().SequenceEqual(e);
    }
}
