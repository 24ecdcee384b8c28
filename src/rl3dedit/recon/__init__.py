"""rl3dedit.recon"""
