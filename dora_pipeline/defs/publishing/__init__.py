"""Publishing the built warehouse to analysts and BI tools."""
