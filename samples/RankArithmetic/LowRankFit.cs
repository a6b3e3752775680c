using LoraGen;
using static TorchSharp.torch;

namespace RankArithmetic;

/// <summary>How close a rank-k adapter gets to an update, next to the closest any rank-k matrix can get.</summary>
public sealed record RankFit(int Rank, long AdapterParameters, double FitError, double BestPossibleError);

/// <summary>
/// Fits LoRA adapters of rank k to a known update ΔW of rank <see cref="TrueRank"/> by training, and
/// compares the result with the Eckart–Young bound: the best rank-k approximation of ΔW in Frobenius
/// norm leaves exactly the singular values past k, so no B·A of rank k can have a smaller error.
/// Errors are relative: ‖fit − ΔW‖ / ‖ΔW‖.
/// </summary>
public static class LowRankFit
{
    public const int TrueRank = 5;
    private static readonly float[] SingularValues = [5, 4, 3, 2, 1];

    /// <summary>ΔW = U·diag(5, 4, 3, 2, 1)·Vᵀ with random orthonormal U and V (100×5).</summary>
    public static Tensor TargetUpdate(Generator generator)
    {
        using var scope = NewDisposeScope();
        var (u, _) = linalg.qr(randn(Square.Size, TrueRank, generator: generator));
        var (v, _) = linalg.qr(randn(Square.Size, TrueRank, generator: generator));
        return (u * tensor(SingularValues)).matmul(v.T).MoveToOuterDisposeScope();
    }

    /// <summary>The Eckart–Young bound from an SVD of ΔW, computed without any LoRA code.</summary>
    public static double BestPossibleError(Tensor update, int rank)
    {
        using var scope = NewDisposeScope();
        var (_, s, _) = linalg.svd(update);
        var energy = s.square();
        var tail = rank >= energy.shape[0] ? zeros(1) : energy.narrow(0, rank, energy.shape[0] - rank);
        return Math.Sqrt(tail.sum().item<float>() / energy.sum().item<float>());
    }

    /// <summary>
    /// Wraps a 100×100 Linear holding a random "pretrained" W₀ (frozen) in a rank-k LoRA layer and trains
    /// only its A and B with Adam on y = (W₀ + ΔW)·x. The learned update is read back through the layer's
    /// own forward: layer(I) − W₀.
    /// </summary>
    public static RankFit Fit(Tensor update, int rank, int steps, Generator generator)
    {
        var linear = nn.Linear(Square.Size, Square.Size, hasBias: false);
        var layer = LoraLayer.Wrap(linear, new LoraConfig { Rank = rank });
        var parameters = layer.NamedAdapterParameters.Select(p => p.Parameter).ToList();
        var optimizer = optim.Adam(parameters, lr: 0.02);
        var schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, 1e-4);
        using var baseWeight = layer.forward(eye(Square.Size)).T.detach();
        using var target = (baseWeight + update).detach();
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var x = randn(256, Square.Size, generator: generator);
            optimizer.zero_grad();
            var loss = nn.functional.mse_loss(layer.forward(x), x.matmul(target.T));
            loss.backward();
            optimizer.step();
            schedule.step();
        }
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var learned = layer.forward(eye(Square.Size)).T - baseWeight;
            double error = ((learned - update).norm().item<float>()) / update.norm().item<float>();
            return new RankFit(rank, layer.Shape.AdapterParameters(rank), error, BestPossibleError(update, rank));
        }
    }
}
