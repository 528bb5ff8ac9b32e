"""carenet careplan: the shared individual care plan."""
