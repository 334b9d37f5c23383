"""What results become: files (NetCDF, CSV), summaries and descriptions for people."""
