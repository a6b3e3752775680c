using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Models;

/// <summary>
/// The tensors of all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT with a 30,522-token vocabulary and a pooler:
/// 22.7 M parameters, 90.9 MB in float32), without its forward: what loading a checkpoint of that size costs.
/// </summary>
public sealed class MiniLmShapes : nn.Module
{
    private const int Width = 384, Intermediate = 1536, Layers = 6;

    private readonly Embedding word_embeddings = nn.Embedding(30522, Width);
    private readonly Embedding position_embeddings = nn.Embedding(512, Width);
    private readonly Embedding token_type_embeddings = nn.Embedding(2, Width);
    private readonly LayerNorm embeddings_norm = nn.LayerNorm(Width);
    private readonly ModuleList<nn.Module> layer = nn.ModuleList<nn.Module>(
        Enumerable.Range(0, Layers).Select(_ => (nn.Module)nn.ModuleDict<nn.Module>(
            ("query", nn.Linear(Width, Width)), ("key", nn.Linear(Width, Width)), ("value", nn.Linear(Width, Width)),
            ("attention_output", nn.Linear(Width, Width)), ("attention_norm", nn.LayerNorm(Width)),
            ("intermediate", nn.Linear(Width, Intermediate)), ("output", nn.Linear(Intermediate, Width)),
            ("output_norm", nn.LayerNorm(Width)))).ToArray());
    private readonly Linear pooler = nn.Linear(Width, Width);

    public MiniLmShapes() : base(nameof(MiniLmShapes)) => RegisterComponents();
}
