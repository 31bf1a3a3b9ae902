"""The data path in: API keys, stores, listings, CSV imports and signed webhooks, through one raw-first pipeline."""
