"""The data path out: inventory events from listing changes, and signed webhooks that deliver them."""
