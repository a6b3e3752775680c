// The samples seed TorchSharp's one global random generator and then draw from it (weight initialisation, dropout,
// batches). Test classes running in parallel draw from the same generator in between, so a test that reruns part of a
// sample and expects the sample's exact weights (FineTuneSampleTests' keyboard adapter) failed now and then in CI.
// The sample tests run one class at a time; their quick runs dominate and take about a minute either way.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
