"""Hook implementations of the aes_gcm plugin."""
