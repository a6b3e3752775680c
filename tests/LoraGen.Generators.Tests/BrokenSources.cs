namespace LoraGen.Generators.Tests;

/// <summary>
/// Sources that must never make the generator or the analyzers throw: unusual declarations, and real
/// ones cut off anywhere (code being typed). Shared, as source, with the analyzer tests.
/// </summary>
internal static class BrokenSources
{
    private const string U = Sources.Usings;

    /// <summary>Odd, wrong or half-typed declarations.</summary>
    public static readonly string[] Unusual =
    [
        U + "[LoraTarget] public class NotPartial : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(8, 8); public NotPartial() : base(\"x\") {} public override Tensor forward(Tensor x) => x; }",
        U + "[LoraTarget] public partial class NotAModule { object a = Linear(8, 8); }",
        U + "[LoraTarget] public static partial class Static { }",
        U + "[LoraTarget] public partial struct Struct { }",
        U + "[LoraTarget] public partial interface IFace { }",
        U + "[LoraTarget] public partial record Rec(int X);",
        U + "[LoraTarget] public enum E { A }",
        U + "[LoraTarget(Rank = \"eight\")] public partial class BadRank : Module<Tensor, Tensor> { }",
        U + "[LoraTarget(Rank = 1 / 0)] public partial class DivZero : Module<Tensor, Tensor> { }",
        U + "[LoraTarget(Targets = null)] public partial class NullTargets : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(8, 8); public NullTargets() : base(\"x\") {} public override Tensor forward(Tensor x) => x; }",
        U + "[LoraTarget(Targets = [null])] public partial class NullName : Module<Tensor, Tensor> { }",
        U + "[LoraTarget(Targets = [1])] public partial class IntName : Module<Tensor, Tensor> { }",
        U + "[LoraTarget(Targets = [\"missing\"])] public partial class Missing : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(8, 8); }",
        U + "[LoraTarget(Exclude = [\"nope\"], Trainable = [\"gone\"])] public partial class BadNames : Module<Tensor, Tensor> { }",
        U + "[LoraTarget(5)] public partial class CtorArg : Module<Tensor, Tensor> { }",
        U + "[LoraTarget(Unknown = 3)] public partial class UnknownProperty : Module<Tensor, Tensor> { }",
        U + "[LoraTarget, LoraTarget] public partial class Twice : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(8, 8); }",
        U + "[LoraTarget] public partial class Dup : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(8, 8); Module<Tensor, Tensor> a = Linear(4, 4); }",
        U + "[LoraTarget(Targets = [\"n\"])] public partial class IntField : Module<Tensor, Tensor> { int n = 3; }",
        U + "[LoraTarget(Targets = [\"a\"])] public partial class ReadOnlyField : Module<Tensor, Tensor> { readonly Module<Tensor, Tensor> a = Linear(8, 8); }",
        U + "[LoraTarget(Targets = [\"a\"])] public partial class SealedType : Module<Tensor, Tensor> { TorchSharp.Modules.Linear a = Linear(8, 8); }",
        U + "[LoraTarget(Targets = [\"n\"])] public partial class Norm : Module<Tensor, Tensor> { Module<Tensor, Tensor> n = LayerNorm(8); }",
        U + "[LoraTarget] public partial class Empty : Module<Tensor, Tensor> { }",
        U + "[LoraTarget] public partial class UnknownBase : DoesNotExist { Module<Tensor, Tensor> a = Linear(8, 8); }",
        U + "[LoraTarget] public partial class Self : Self { }",
        U + "public class Outer { [LoraTarget] public partial class Inner : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(8, 8); } }",
        U + "public partial class Holder { [LoraTarget] public int Property { get; set; } }",
        U + "public partial class M : Module<Tensor, Tensor> { void F() { [LoraTarget] int local = 0; } }",
        U + "[LoraTarget] public partial class Gen<T> : Module<Tensor, Tensor> where T : struct { Module<Tensor, Tensor> a = Linear(8, 8); }",
        U + "[LoraTarget] public partial class Unassigned : Module<Tensor, Tensor> { Module<Tensor, Tensor> a; }",
        U + "[LoraTarget] public partial class NonConst : Module<Tensor, Tensor> { static int n = 8; Module<Tensor, Tensor> a = Linear(n, n); }",
        U + "[LoraTarget] public partial class Ternary : Module<Tensor, Tensor> { static bool b; Module<Tensor, Tensor> a = b ? Linear(8, 8) : Linear(4, 4); }",
        U + "[LoraTarget] public partial class Nullable : Module<Tensor, Tensor> { Module<Tensor, Tensor>? a = null; }",
        U + "[LoraTarget] public partial class Huge : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(long.MaxValue, long.MaxValue); }",
        U + "[LoraTarget(Rank = 2)] public partial class Conv : Module<Tensor, Tensor> { Module<Tensor, Tensor> c = Conv2d(3, 8, (3, 3), groups: 4); }",
        U + "[LoraTarget(Alpha = double.NaN, Dropout = double.PositiveInfinity)] public partial class NaNs : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(8, 8); }",
        U + "[LoraGen.LoraTarget(Targets = new[] { \"a\" })] public partial class OldSyntax : Module<Tensor, Tensor> { Module<Tensor, Tensor> a = Linear(8, 8); }",
        "[LoraTarget] public partial class NoUsings : Module<Tensor, Tensor> { }",
        "namespace ;;; [LoraGen.LoraTarget] partial class",
        "",
        "#error stop\n" + U + "[LoraTarget] public partial class Err : Module<Tensor, Tensor> { }",
    ];

    /// <summary>Representative sources cut off at many points, including inside the attribute.</summary>
    public static IEnumerable<string> Cut()
    {
        foreach (var source in new[] { Sources.Attention, Sources.DefaultTargetsAndConstructor })
        {
            var attribute = source.IndexOf("[LoraTarget(", StringComparison.Ordinal);
            for (int cut = attribute + 1; cut < attribute + 60; cut += 3)
                yield return source[..cut];
            for (int cut = attribute + 60; cut < source.Length; cut += source.Length / 12)
                yield return source[..cut];
        }
    }
}
