"""Media files: probing them (`probe`) and drawing their previews (`previews`)."""
