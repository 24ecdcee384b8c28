"""rl3dedit.rl"""
