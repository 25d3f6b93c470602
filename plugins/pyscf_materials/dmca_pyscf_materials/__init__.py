"""DMCA plugin pyscf_materials."""
