using SpamFilter.Model;
using static TorchSharp.torch;

namespace SpamFilter.Runs;

/// <summary>What a fine-tuned model kept of the pretrained one, on held-out texts: the cosine between the two
/// models' sentence embeddings of each text, and how many of each text's nearest neighbours stay the same.</summary>
/// <param name="MeanCosine">Mean over the texts of cos(original, fine-tuned).</param>
/// <param name="MinCosine">The smallest of those cosines.</param>
/// <param name="NeighboursKept">Mean number of each text's <see cref="Forgetting.Neighbours"/> nearest neighbours
/// (among the held-out texts, by cosine) that are the same for both models.</param>
/// <param name="MaxDifference">max |Δ| between the two models' embeddings.</param>
public sealed record Kept(double MeanCosine, double MinCosine, double NeighboursKept, double MaxDifference);

public static class Forgetting
{
    public const int Neighbours = 10;

    /// <summary>Mean-pooled sentence embeddings (sentence-transformers' pooling) of the first <paramref name="count"/>
    /// texts, in eval mode, as float64 on the CPU, detached from any dispose scope.</summary>
    public static Tensor Embeddings(BertForSequenceClassification model, EncodedSet set, int count, Device device)
    {
        model.eval();
        var chunks = new List<Tensor>();
        using (no_grad())
        {
            foreach (var rows in set.Chunks(64, count))
            {
                using var scope = NewDisposeScope();
                var (ids, mask, _) = set.Batch(rows, device);
                chunks.Add(model.SentenceEmbeddings(ids, mask).to(ScalarType.Float64).cpu().MoveToOuterDisposeScope());
            }
        }
        var embeddings = cat(chunks, 0).DetachFromDisposeScope();
        foreach (var chunk in chunks)
            chunk.Dispose();
        return embeddings;
    }

    public static Kept Compare(Tensor original, Tensor tuned)
    {
        using var scope = NewDisposeScope();
        // cos = a·b / √(|a|²·|b|²) in float64: identical embeddings give exactly 1 (√(s²) = s in IEEE arithmetic).
        var cosine = (original * tuned).sum(1) / ((original * original).sum(1) * (tuned * tuned).sum(1)).sqrt();
        var originalNeighbours = NearestNeighbours(original);
        var tunedNeighbours = NearestNeighbours(tuned);
        double kept = 0;
        for (int i = 0; i < originalNeighbours.Length; i++)
            kept += originalNeighbours[i].Intersect(tunedNeighbours[i]).Count();
        return new Kept(cosine.mean().item<double>(), cosine.min().item<double>(), kept / originalNeighbours.Length,
            (original - tuned).abs().max().item<double>());
    }

    // Each text's nearest neighbours among the others, by cosine.
    private static HashSet<long>[] NearestNeighbours(Tensor embeddings)
    {
        using var scope = NewDisposeScope();
        var unit = nn.functional.normalize(embeddings, p: 2, dim: 1);
        var similarity = unit.matmul(unit.t());
        similarity.masked_fill_(eye(embeddings.shape[0], dtype: ScalarType.Bool), double.NegativeInfinity);
        int k = (int)Math.Min(Neighbours, embeddings.shape[0] - 1);
        var (_, indices) = similarity.topk(k, dim: 1);
        long[] flat = indices.data<long>().ToArray();
        return Enumerable.Range(0, (int)embeddings.shape[0]).Select(i => flat.Skip(i * k).Take(k).ToHashSet()).ToArray();
    }
}
