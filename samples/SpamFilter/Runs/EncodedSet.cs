using static TorchSharp.torch;

namespace SpamFilter.Runs;

/// <summary>Messages as the model reads them: token ids and attention masks [count, length], labels (1 = spam).</summary>
public sealed class EncodedSet(long[] ids, long[] mask, long[] labels, int length)
{
    public int Count => labels.Length;
    public int Length => length;
    public IReadOnlyList<long> Labels => labels;

    /// <summary>Rows <paramref name="rows"/> as tensors on <paramref name="device"/>, owned by the caller's dispose scope.</summary>
    public (Tensor Ids, Tensor Mask, Tensor Labels) Batch(IReadOnlyList<int> rows, Device device)
    {
        var batchIds = new long[rows.Count * length];
        var batchMask = new long[rows.Count * length];
        var batchLabels = new long[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            Array.Copy(ids, rows[i] * length, batchIds, i * length, length);
            Array.Copy(mask, rows[i] * length, batchMask, i * length, length);
            batchLabels[i] = labels[rows[i]];
        }
        return (tensor(batchIds, [rows.Count, length], device: device),
            tensor(batchMask, [rows.Count, length], device: device),
            tensor(batchLabels, device: device));
    }

    /// <summary>The first <paramref name="count"/> rows (the sets are shuffled once, so that is a fair sample).</summary>
    public IReadOnlyList<int> First(int count) => Enumerable.Range(0, Math.Min(count, Count)).ToList();

    /// <summary>All rows in chunks of <paramref name="size"/>.</summary>
    public IEnumerable<IReadOnlyList<int>> Chunks(int size, int? count = null)
    {
        int total = Math.Min(count ?? Count, Count);
        for (int start = 0; start < total; start += size)
            yield return Enumerable.Range(start, Math.Min(size, total - start)).ToList();
    }
}
