namespace SpamFilter.Data;

/// <summary>
/// One e-mail of the corpus as the model reads it: <paramref name="Text"/> is the subject and the body, headers
/// stripped, decoded and flattened to one line (<see cref="EmailText"/>); <paramref name="Source"/> names the file
/// it came from, "group/name" (e.g. "spam-2/00001.317e78fa8ee2f54cd4890fdc09ba8176").
/// </summary>
public sealed record SpamMessage(string Text, bool IsSpam, string Source);

/// <summary>The corpus could not be had: npm missing or failing, or a cached file that is not the expected one.</summary>
public sealed class SpamCorpusException(string message, Exception? inner = null) : Exception(message, inner);
