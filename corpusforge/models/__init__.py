"""Model-based curation: language-model perplexity and local text classifiers."""
