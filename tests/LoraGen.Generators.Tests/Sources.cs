namespace LoraGen.Generators.Tests;

/// <summary>Representative user code, each compiled with the generator.</summary>
internal static class Sources
{
    public const string Usings = """
        using LoraGen;
        using TorchSharp;
        using static TorchSharp.torch;
        using static TorchSharp.torch.nn;

        """;

    public const string Attention = Usings + """
        namespace Demo.Models;

        [LoraTarget(Rank = 8, Alpha = 16, Targets = ["q_proj", "v_proj", "o_proj"])]
        public partial class Attention : Module<Tensor, Tensor>
        {
            private const int Width = 512;
            private Module<Tensor, Tensor> q_proj = Linear(Width, Width);
            private Module<Tensor, Tensor> k_proj = Linear(Width, Width);
            private Module<Tensor, Tensor> v_proj = Linear(Width, Width, hasBias: false);
            [LoraTarget(Rank = 4, Quantize = QuantizationKind.Nf4)] private Module<Tensor, Tensor> o_proj = Linear(Width, 2 * Width / 2);

            public Attention() : base(nameof(Attention)) => RegisterComponents();

            public override Tensor forward(Tensor x) => o_proj.call(q_proj.call(x) + k_proj.call(x) + v_proj.call(x));
        }
        """;

    public const string DefaultTargetsAndConstructor = Usings + """
        namespace Demo
        {
            [LoraTarget(Rank = 2, Dropout = 0.05, UseRsLora = true, Init = LoraInit.Gaussian, Exclude = ["head"], Trainable = ["norm"])]
            public partial class Encoder : Module<Tensor, Tensor>
            {
                private Module<Tensor, Tensor> embed, conv;
                private Module<Tensor, Tensor> image;
                private Module<Tensor, Tensor> head = Linear(64, 10);
                private readonly Module<Tensor, Tensor> norm = LayerNorm(64);
                private Module<Tensor, Tensor> unknown;
                private Module<Tensor, Tensor> late = null!;

                public Encoder(Module<Tensor, Tensor> injected) : base(nameof(Encoder))
                {
                    embed = Embedding(1000, 64);
                    late = Linear(64, 32);
                    this.conv = Conv1d(64, 64, 3, padding: 1);
                    image = Conv2d(3, 16, (3, 5));
                    unknown = injected;
                    RegisterComponents();
                }

                public override Tensor forward(Tensor x) => head.call(norm.call(conv.call(embed.call(x))));
            }
        }
        """;

    public const string NestedGenericGlobal = Usings + """
        public static partial class Outer
        {
            public partial class Block<T> : Module<Tensor, Tensor>
            {
                [LoraTarget(Rank = 4)] private Module<Tensor, Tensor> up = Linear(32, 128), down = Linear(128, 32);
                private Module<Tensor, Tensor> gate = Linear(32, 128);

                public Block() : base("block") => RegisterComponents();

                public override Tensor forward(Tensor x) => down.call(up.call(x) * gate.call(x));
            }
        }
        """;

    public const string PartialAcrossFiles1 = Usings + """
        namespace Demo.Split;

        [LoraTarget(Rank = 8)]
        public partial class Mlp : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> fc1 = Linear(256, 1024);
            public Mlp() : base(nameof(Mlp)) => RegisterComponents();
        }
        """;

    public const string PartialAcrossFiles2 = Usings + """
        namespace Demo.Split;

        public partial class Mlp
        {
            private Module<Tensor, Tensor> fc2 = Linear(1024, 256);
            public override Tensor forward(Tensor x) => fc2.call(fc1.call(x));
        }
        """;

    /// <summary>Nothing to adapt (LORA0010, a warning): still generated, so ApplyLora trains the head
    /// instead of refusing the model.</summary>
    public const string NothingToAdapt = Usings + """
        namespace Demo;

        [LoraTarget(Exclude = ["body"], Trainable = ["head"])]
        public partial class HeadOnly : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> body = Linear(64, 64);
            private Module<Tensor, Tensor> head = Linear(64, 10);
            public HeadOnly() : base(nameof(HeadOnly)) => RegisterComponents();
            public override Tensor forward(Tensor x) => head.call(body.call(x));
        }
        """;
}
