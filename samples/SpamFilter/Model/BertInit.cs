using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>
/// New weights as transformers' <c>BertPreTrainedModel._init_weights</c> makes them: Linear and Embedding weights
/// normal(0, initializer_range), Linear biases 0, the padding row of an embedding 0 (LayerNorm starts at 1 and 0 in
/// TorchSharp already). A pretrained load then overwrites all but what the checkpoint lacks (the classifier head).
/// </summary>
internal static class BertInit
{
    public static void Apply(nn.Module root, BertConfig config)
    {
        using var noGrad = no_grad();
        foreach (var module in root.modules().Prepend(root)) // modules() leaves the root out: a lone head is a root
        {
            switch (module)
            {
                case Linear linear:
                    nn.init.normal_(linear.weight, 0, config.InitializerRange);
                    if (linear.bias is { } bias)
                        nn.init.zeros_(bias);
                    break;
                case Embedding embedding:
                    nn.init.normal_(embedding.weight, 0, config.InitializerRange);
                    break;
            }
        }
        // After the embeddings' own initialisation (modules() lists parents first). TorchSharp's Embedding does not
        // expose its padding index, so the module that sets it zeroes the row.
        foreach (var embeddings in root.modules().Prepend(root).OfType<BertEmbeddings>())
            embeddings.ZeroPaddingRow();
    }
}
