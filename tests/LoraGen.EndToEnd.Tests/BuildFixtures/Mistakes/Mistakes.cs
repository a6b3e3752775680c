using LoraGen;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Mistakes;

// One deliberate mistake per class; the comment names the rule it triggers.

[LoraTarget] // LORA0001: not partial
public class NotPartial : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> fc = Linear(64, 64);
    public NotPartial() : base(nameof(NotPartial)) { }
    public override Tensor forward(Tensor x) => fc.call(x);
}

[LoraTarget] // LORA0002: not a module
public partial class NotAModule
{
    private object fc = Linear(64, 64);
}

[LoraTarget(Targets = ["q_prj"])] // LORA0003: typo
public partial class Typo : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> q_proj = Linear(64, 64);
    public Typo() : base(nameof(Typo)) { }
    public override Tensor forward(Tensor x) => q_proj.call(x);
}

[LoraTarget(Targets = ["fc", "norm"])] // LORA0004: LayerNorm
public partial class Norm : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> fc = Linear(64, 64);
    private Module<Tensor, Tensor> norm = LayerNorm(64);
    public Norm() : base(nameof(Norm)) { }
    public override Tensor forward(Tensor x) => norm.call(fc.call(x));
}

[LoraTarget] // LORA0005: readonly
public partial class ReadOnlyTarget : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> fc = Linear(64, 64);
    public ReadOnlyTarget() : base(nameof(ReadOnlyTarget)) { }
    public override Tensor forward(Tensor x) => fc.call(x);
}

[LoraTarget(Rank = 0)] // LORA0006: rank below 1
public partial class ZeroRank : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> fc = Linear(64, 64);
    public ZeroRank() : base(nameof(ZeroRank)) { }
    public override Tensor forward(Tensor x) => fc.call(x);
}

[LoraTarget(Rank = 16)] // LORA0007 and LORA0008: rank 16 on a 16→4 layer
public partial class TooHighRank : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> fc = Linear(16, 4);
    public TooHighRank() : base(nameof(TooHighRank)) { }
    public override Tensor forward(Tensor x) => fc.call(x);
}

[LoraTarget(Rank = 8, Targets = ["q_proj", "v_proj"])] // LORA0009: v_proj overridden differently
public partial class TwiceTargeted : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> q_proj = Linear(64, 64);
    [LoraTarget(Rank = 4)] private Module<Tensor, Tensor> v_proj = Linear(64, 64);
    public TwiceTargeted() : base(nameof(TwiceTargeted)) { }
    public override Tensor forward(Tensor x) => v_proj.call(q_proj.call(x));
}

[LoraTarget] // LORA0010: nothing to adapt
public partial class OnlyNorms : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> norm = LayerNorm(64);
    public OnlyNorms() : base(nameof(OnlyNorms)) { }
    public override Tensor forward(Tensor x) => norm.call(x);
}

[LoraTarget(Targets = ["fc"], Trainable = ["fc"])] // LORA0011: turned off in .editorconfig
public partial class AdaptedAndTrained : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> fc = Linear(64, 64);
    public AdaptedAndTrained() : base(nameof(AdaptedAndTrained)) { }
    public override Tensor forward(Tensor x) => fc.call(x);
}

[LoraTarget(Rank = 64, Alpha = 8)] // LORA0012: info, raised to a warning in .editorconfig
public partial class Damped : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> fc = Linear(1024, 1024);
    public Damped() : base(nameof(Damped)) { }
    public override Tensor forward(Tensor x) => fc.call(x);
}

[LoraTarget(Rank = 6)] // LORA0013: groups = 4 does not divide 6
public partial class Grouped : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> conv = Conv1d(64, 64, 3, groups: 4);
    public Grouped() : base(nameof(Grouped)) { }
    public override Tensor forward(Tensor x) => conv.call(x);
}
