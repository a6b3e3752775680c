using static LoraGen.Analyzers.Tests.Code;

namespace LoraGen.Analyzers.Tests;

/// <summary>LORA0001 (not partial), LORA0002 (not a Module) and LORA0010 (nothing to adapt).</summary>
public sealed class DeclarationRuleTests
{
    [Fact]
    public Task Lora0001_class_not_partial() => AnalyzerTest.Run(Usings + """
        [LoraTarget]
        public class {|LORA0001:Block|} : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> fc = Linear(64, 64);
            public Block() : base("Block") { }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0001_containing_type_not_partial() => AnalyzerTest.Run(Usings + """
        public class Outer
        {
            [LoraTarget]
            public partial class {|LORA0001:Inner|} : Module<Tensor, Tensor>
            {
                private Module<Tensor, Tensor> fc = Linear(64, 64);
                public Inner() : base("Inner") { }
                public override Tensor forward(Tensor x) => x;
            }
        }
        """);

    [Fact]
    public Task Lora0001_silent_when_every_declaration_is_partial() => AnalyzerTest.Run(Usings + """
        public partial class Outer
        {
            [LoraTarget]
            public partial class Inner : Module<Tensor, Tensor>
            {
                private Module<Tensor, Tensor> fc = Linear(64, 64);
                public Inner() : base("Inner") { }
                public override Tensor forward(Tensor x) => x;
            }
        }
        """);

    [Fact]
    public void Lora0001_message_names_the_type_that_lacks_partial() =>
        Assert.Equal(
            "'Inner' carries [LoraTarget] but 'Outer', which contains it, is not declared partial, so the generator cannot add its LoRA code; add 'partial'",
            RunAnalyzer.Message(Usings + """
                public class Outer
                {
                    [LoraTarget] public partial class Inner : Module<Tensor, Tensor> { Module<Tensor, Tensor> fc = Linear(64, 64); public Inner() : base("I") { } public override Tensor forward(Tensor x) => x; }
                }
                """, "LORA0001"));

    [Fact]
    public Task Lora0002_class_not_a_module() => AnalyzerTest.Run(Usings + """
        [LoraTarget]
        public partial class {|LORA0002:Settings|}
        {
            private object fc = Linear(64, 64);
        }
        """);

    [Fact]
    public Task Lora0002_field_attribute_in_a_class_that_is_not_a_module() => AnalyzerTest.Run(Usings + """
        public partial class {|LORA0002:Holder|}
        {
            [LoraTarget(Rank = 4)] private object fc = Linear(64, 64);
        }
        """);

    [Fact]
    public Task Lora0002_silent_for_an_indirect_module() => AnalyzerTest.Run(Usings + """
        public abstract class Base : Module<Tensor, Tensor> { protected Base() : base("Base") { } }
        [LoraTarget]
        public partial class Derived : Base
        {
            private Module<Tensor, Tensor> fc = Linear(64, 64);
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0010_nothing_to_adapt() => AnalyzerTest.Run(Usings + """
        [LoraTarget]
        public partial class {|LORA0010:Norms|} : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> norm = LayerNorm(64);
            public Norms() : base("Norms") { }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0010_everything_excluded() => AnalyzerTest.Run(Usings + """
        [LoraTarget(Exclude = ["fc"])]
        public partial class {|LORA0010:Block|} : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> fc = Linear(64, 64);
            public Block() : base("Block") { }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0010_everything_trained_in_full() => AnalyzerTest.Run(Usings + """
        [LoraTarget(Trainable = ["head"])]
        public partial class {|LORA0010:Head|} : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> head = Linear(64, 10);
            public Head() : base("Head") { }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0010_silent_when_one_layer_is_left() => AnalyzerTest.Run(Module(
        "[LoraTarget(Exclude = [\"fc\"])]",
        "    private Module<Tensor, Tensor> fc = Linear(64, 64);\n    private Module<Tensor, Tensor> out_proj = Linear(64, 64);"));

    [Fact]
    public void Lora0010_message_says_why() =>
        Assert.EndsWith(
            "has nothing to adapt: the fields it would adapt are all in Exclude or Trainable",
            RunAnalyzer.Message(Module("[LoraTarget(Exclude = [\"fc\"])]", "    private Module<Tensor, Tensor> fc = Linear(64, 64);"), "LORA0010"));
}
