using FineTune;
using LoraGen;

namespace LoraGen.Samples.Tests;

/// <summary>
/// <c>--quantize nf4</c>: after the usual run, the LoRA fine-tune again over an NF4 base (every frozen Linear
/// quantized), compared with the float-base run. Quick mode trains too little for the accuracies to mean anything,
/// so this checks that the run completes, what was quantized, and what is printed, not how well it learns.
/// </summary>
public sealed class QuantizedFineTuneTests
{
    [Fact]
    public void A_quick_run_with_an_nf4_base_completes_and_prints_the_comparison()
    {
        var output = ScratchDirectories.NewPath("finetune-nf4-");
        try
        {
            var options = SampleOptions.Parse(["--quick", "--device", "cpu", "--quantize", "nf4", "--out", output]);
            var console = new RecordingConsole();
            var result = FineTuneSample.Run(options, console.Console);

            var quantized = Assert.IsType<QuantizedLoraResult>(result.Quantized);
            Assert.Equal("NF4", quantized.Kind);
            Assert.Same(result.Lora, quantized.FloatBase);
            // Same adapter (rank 16 on the float token embedding) over either base.
            Assert.Equal(result.Lora.TrainableParameters, quantized.QuantizedBase.TrainableParameters);
            // Every Linear is stored in NF4: 4 bits a weight + 4 bytes per 64, float32 biases; at least 1/5 of float32.
            Assert.InRange(quantized.QuantizedLinearBytes, 1, quantized.FloatLinearBytes / 5);
            Assert.Equal(100 * (quantized.QuantizedBase.AccuracyB - result.Lora.AccuracyB), quantized.DifferenceBPoints);

            var text = System.Text.RegularExpressions.Regex.Replace(console.Text, @"\s+", " ");
            Assert.Contains("QLoRA: the LoRA fine-tune on a float32 base vs an NF4 base", text);
            Assert.Contains("task B, NF4 base minus float32 base:", text);
            Assert.Contains("task A accuracy, adapters off (the base)", text);
        }
        finally
        {
            if (Directory.Exists(output))
                Directory.Delete(output, recursive: true);
        }
    }
}
