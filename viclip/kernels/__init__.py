"""Fused Triton kernels for ViCLIP, each with a plain-torch reference beside it."""
