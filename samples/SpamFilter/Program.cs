// The sample's entry point; the runs are being built (issue 14).
System.Console.WriteLine("SpamFilter: under construction.");
