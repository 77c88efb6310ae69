"""Media into tokens: decode images/audio/video, cut features, quantise with VQ codebooks, interleave."""
