"""DMCA plugin aes_gcm."""
