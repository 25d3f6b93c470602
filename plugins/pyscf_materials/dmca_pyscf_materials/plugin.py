"""Hook implementations of the pyscf_materials plugin."""
