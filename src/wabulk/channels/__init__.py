"""Ways to reach WhatsApp. Each knows nothing of the database, Flask or campaigns."""
