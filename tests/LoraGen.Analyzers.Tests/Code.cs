namespace LoraGen.Analyzers.Tests;

/// <summary>Building blocks for test sources.</summary>
internal static class Code
{
    public const string Usings = """
        using LoraGen;
        using TorchSharp;
        using static TorchSharp.torch;
        using static TorchSharp.torch.nn;

        """;

    /// <summary>A module class with <paramref name="attribute"/> and <paramref name="members"/>.</summary>
    public static string Module(string attribute, string members, string name = "Block") => Usings + $$"""
        {{attribute}}
        public partial class {{name}} : Module<Tensor, Tensor>
        {
        {{members}}
            public {{name}}() : base("{{name}}") { }
            public override Tensor forward(Tensor x) => x;
        }
        """;
}
