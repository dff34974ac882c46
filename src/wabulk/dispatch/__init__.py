"""The dispatcher: claims due messages, paces, retries and recovers after crashes."""
