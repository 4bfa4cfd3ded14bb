"""The dbt project: every model an asset, every test an asset check."""
