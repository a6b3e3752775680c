using SpamFilter.Import;

namespace LoraGen.Samples.Tests;

/// <summary>
/// all-MiniLM-L6-v2 imported once per test run, into a folder of its own (not the user's cache), so every run goes
/// through the whole import: package lookup, resource reading, graph mapping, the safetensors write.
/// </summary>
public sealed class MiniLmFixture : IDisposable
{
    public MiniLmFixture()
    {
        CacheDirectory = ScratchDirectories.NewPath("minilm-");
        CheckpointPath = MiniLmCheckpoint.Ensure(CacheDirectory);
        Onnx = MiniLmPackage.Read(MiniLmPackage.LocateAssembly()).Onnx;
        Vocabulary = File.ReadLines(Path.Combine(CacheDirectory, MiniLmCheckpoint.VocabularyFileName))
            .Select((token, id) => (token, id))
            .ToDictionary(entry => entry.token, entry => (long)entry.id, StringComparer.Ordinal);
    }

    public string CacheDirectory { get; }

    public string CheckpointPath { get; }

    /// <summary>The package's ONNX file, for ONNX Runtime and the graph tests.</summary>
    public byte[] Onnx { get; }

    /// <summary>vocab.txt as written by the import: token → id (its line number).</summary>
    public IReadOnlyDictionary<string, long> Vocabulary { get; }

    /// <summary>[CLS] words [SEP] as ids, each word a whole WordPiece token (no tokenizer needed).</summary>
    public long[] Ids(string sentence) =>
        [Vocabulary["[CLS]"], .. sentence.Split(' ').Select(word => Vocabulary[word]), Vocabulary["[SEP]"]];

    public void Dispose() => Directory.Delete(CacheDirectory, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class MiniLmCollection : ICollectionFixture<MiniLmFixture>
{
    public const string Name = "all-MiniLM-L6-v2";
}
