using System;
using System.Text;

namespace LoraGen.Generators.Emit;

/// <summary>A small indented text writer for generated source.</summary>
internal sealed class SourceWriter
{
    private readonly StringBuilder text = new();
    private int indentation;

    public void Line(string line = "")
    {
        if (line.Length > 0)
            text.Append(' ', indentation * 4).Append(line);
        text.Append('\n');
    }

    /// <summary>Writes <c>{</c>, indents until the returned scope is disposed, then writes <c>}</c> plus <paramref name="suffix"/>.</summary>
    public IDisposable Block(string header, string suffix = "")
    {
        Line(header);
        Line("{");
        indentation++;
        return new Closer(this, suffix);
    }

    public override string ToString() => text.ToString();

    private sealed class Closer : IDisposable
    {
        private readonly SourceWriter writer;
        private readonly string suffix;

        public Closer(SourceWriter writer, string suffix)
        {
            this.writer = writer;
            this.suffix = suffix;
        }

        public void Dispose()
        {
            writer.indentation--;
            writer.Line("}" + suffix);
        }
    }
}
