"""What is computed from a network's description (no weights, no torch): rows per stage, block or
layer, receptive fields, the DOT graph, comparisons, published accuracy, Learn's measurements."""
