"""The benchmarks behind `rag eval`: `datasets` (BEIR, SQuAD 1.1/2.0 loaders), `records` (what an answer
run stores), `scoring` (per mode, through the product's GroundingPolicy), `calibration`, `reports`, and
the runners `retrieval`, `answers`, `support` and `devset`."""
